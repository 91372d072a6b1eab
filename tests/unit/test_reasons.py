import math

from usage_features.serving.reasons import explain

QUIET = {"days_since_last_event": 1.0, "event_count_90d": 50, "event_count_30d": 20,
         "event_count_prev30d": 20, "decay_ratio_30d_prev30d": 1.0, "decay_ratio_7d_30d": 1.0,
         "monitoring_run_count_30d": 5, "days_since_last_monitoring_run": 2.0,
         "is_first_90_days": False, "adoption_score_latest": 0.6,
         "adoption_score_change_30d": 0.0, "integration_connect_count_90d": 2,
         "low_adoption_early_life": False}


def test_a_healthy_customer_has_no_reasons():
    assert explain(QUIET) == []


def test_decay_is_stated_as_a_percentage_drop():
    reasons = explain({**QUIET, "decay_ratio_30d_prev30d": 0.38, "event_count_prev30d": 40})
    assert reasons == ["30-day activity down 62% vs the previous 30 days"]


def test_missing_monitoring_runs_say_when_the_last_one_was():
    reasons = explain({**QUIET, "monitoring_run_count_30d": 0,
                       "days_since_last_monitoring_run": 41.2})
    assert reasons == ["no monitoring_run in 30 days (last 41 days ago)"]


def test_low_early_adoption_is_named_with_its_score():
    reasons = explain({**QUIET, "is_first_90_days": True, "adoption_score_latest": 0.12})
    assert reasons == ["adoption 0.12 in first 90 days"]


def test_the_most_severe_reasons_come_first_and_are_limited():
    everything = {**QUIET, "days_since_last_event": 45.0, "decay_ratio_30d_prev30d": 0.1,
                  "event_count_prev30d": 30, "monitoring_run_count_30d": 0,
                  "integration_connect_count_90d": 0}
    reasons = explain(everything, limit=2)
    assert reasons == ["no activity for 45 days",
                       "30-day activity down 90% vs the previous 30 days"]


def test_a_customer_with_no_events_at_all_says_so():
    reasons = explain({**QUIET, "days_since_last_event": math.nan, "event_count_90d": 0})
    assert reasons[0] == "no product activity recorded"


def test_a_customer_who_never_ran_monitoring_is_told_so():
    reasons = explain({**QUIET, "monitoring_run_count_30d": 0,
                       "days_since_last_monitoring_run": math.nan})
    assert reasons == ["never ran a monitoring_run"]


def test_a_monitoring_reason_never_contradicts_its_own_recency():
    # no run in the 30-day window, yet one "0 days ago": features not of one moment
    reasons = explain({**QUIET, "monitoring_run_count_30d": 0,
                       "days_since_last_monitoring_run": 0.2})
    assert not any("monitoring_run" in r for r in reasons)


def test_silence_is_not_claimed_when_the_week_has_events():
    reasons = explain({**QUIET, "days_since_last_event": 20.0, "event_count_7d": 3})
    assert not any("no activity" in r for r in reasons)


def test_a_negative_recency_gives_no_reason():
    reasons = explain({**QUIET, "days_since_last_event": -3.0, "monitoring_run_count_30d": 0,
                       "days_since_last_monitoring_run": -1.0})
    assert reasons == []

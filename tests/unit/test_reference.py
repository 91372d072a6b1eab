"""Hand-worked cases for the brute-force feature oracle in tests/reference.py."""

import itertools
import math

import pandas as pd
import pytest

from tests.reference import (
    REQUEST_TIME_FEATURES,
    WINDOWED_FEATURES,
    brute_force_event_count,
    brute_force_features,
)
from usage_features.domain.value_objects import EventType

# The request time used by most tests, and its UTC day D.
T = pd.Timestamp("2026-03-15 12:00", tz="UTC")
D = pd.Timestamp("2026-03-15 00:00", tz="UTC")
DAY = pd.Timedelta(days=1)
US = pd.Timedelta(microseconds=1)
_ids = itertools.count()


def ev(timestamp, event_type="login", score=0.5, event_id=None, customer_id="c1"):
    return {
        "event_id": event_id or f"e{next(_ids):06d}",
        "customer_id": customer_id,
        "timestamp": pd.Timestamp(timestamp),
        "event_type": event_type,
        "feature_adoption_score": score,
    }


def events_frame(*events):
    columns = ["event_id", "customer_id", "timestamp", "event_type", "feature_adoption_score"]
    frame = pd.DataFrame(list(events), columns=columns)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def customers_frame(*rows):
    frame = pd.DataFrame(
        [{"customer_id": c, "signup_at": s, "churned_at": pd.NaT, "plan": "pro"} for c, s in rows]
    )
    frame["signup_at"] = pd.to_datetime(frame["signup_at"], utc=True)
    frame["churned_at"] = pd.to_datetime(frame["churned_at"], utc=True)
    return frame


def features_at(events, t=T, customers=None, customer_id="c1"):
    """The oracle's feature row for one (customer, t) entity row."""
    entity_rows = pd.DataFrame({"customer_id": [customer_id], "event_timestamp": [t]})
    return brute_force_features(events_frame(*events), customers, entity_rows).iloc[0]


class TestWindowBoundaries:
    def test_an_event_exactly_at_d_minus_7_days_is_in_the_7_day_window(self):
        assert features_at([ev(D - 7 * DAY)])["event_count_7d"] == 1

    def test_an_event_one_microsecond_earlier_is_out_of_the_7_day_window_but_in_the_30(self):
        row = features_at([ev(D - 7 * DAY - US)])
        assert (row["event_count_7d"], row["event_count_30d"]) == (0, 1)

    def test_events_at_d_or_later_are_never_counted(self):
        row = features_at([ev(D), ev(D + 6 * pd.Timedelta(hours=1)), ev(T), ev(T + DAY)])
        assert (row["event_count_7d"], row["event_count_30d"], row["event_count_90d"]) == (0, 0, 0)
        assert row["active_days_30d"] == 0
        assert pd.isna(row["last_event_at"])

    def test_the_last_microsecond_before_d_is_counted(self):
        assert features_at([ev(D - US)])["event_count_7d"] == 1

    def test_d_minus_30_days_is_in_the_30_day_window_and_just_before_it_is_previous_30(self):
        row = features_at([ev(D - 30 * DAY), ev(D - 30 * DAY - US)])
        assert (row["event_count_30d"], row["event_count_prev30d"]) == (1, 1)

    def test_the_previous_30_days_start_at_d_minus_60_days_inclusive(self):
        row = features_at([ev(D - 60 * DAY), ev(D - 60 * DAY - US)])
        assert row["event_count_prev30d"] == 1
        assert row["event_count_90d"] == 2

    def test_the_90_day_window_starts_at_d_minus_90_days_inclusive(self):
        row = features_at([ev(D - 90 * DAY), ev(D - 90 * DAY - US)])
        assert row["event_count_90d"] == 1

    def test_t_at_midnight_and_one_microsecond_before_it_fall_on_different_days(self):
        events = [ev("2026-03-14 12:00")]
        at_midnight = features_at(events, t=pd.Timestamp("2026-03-15 00:00", tz="UTC"))
        just_before = features_at(events, t=pd.Timestamp("2026-03-14 23:59:59.999999", tz="UTC"))
        assert at_midnight["event_count_7d"] == 1  # D = 03-15, the event is on the day before
        assert just_before["event_count_7d"] == 0  # D = 03-14, the event is on day D itself

    def test_a_request_time_in_another_timezone_is_truncated_to_its_utc_day(self):
        # 2026-03-15 01:00 at +05:00 is 2026-03-14 20:00 UTC, so D is 03-14 UTC.
        t = pd.Timestamp("2026-03-15 01:00", tz="Etc/GMT-5")
        assert features_at([ev("2026-03-14 10:00")], t=t)["event_count_7d"] == 0


class TestPerTypeCounts:
    def test_each_event_type_is_counted_in_its_own_30_day_column(self):
        row = features_at(
            [
                ev(D - 1 * DAY, "login"),
                ev(D - 2 * DAY, "login"),
                ev(D - 3 * DAY, "monitoring_run"),
                ev(D - 40 * DAY, "monitoring_run"),  # outside 30 days
                ev(D - 4 * DAY, "api_call"),
            ]
        )
        assert row["login_count_30d"] == 2
        assert row["monitoring_run_count_30d"] == 1
        assert row["api_call_count_30d"] == 1
        assert row["dashboard_view_count_30d"] == 0
        assert row["event_count_30d"] == 4

    def test_there_is_a_30_day_count_column_for_every_event_type(self):
        row = features_at([])
        for event_type in EventType:
            assert row[f"{event_type.value}_count_30d"] == 0

    def test_integration_connects_are_also_counted_over_90_days(self):
        row = features_at(
            [
                ev(D - 5 * DAY, "integration_connect"),
                ev(D - 60 * DAY, "integration_connect"),
                ev(D - 91 * DAY, "integration_connect"),
            ]
        )
        assert row["integration_connect_count_30d"] == 1
        assert row["integration_connect_count_90d"] == 2


class TestDecayRatios:
    def test_7d_over_30d_is_the_7_day_count_over_its_expected_share_of_the_30_day_count(self):
        # 1 event in the last 7 days, 2 in 30 days: 1 / (2 * 7 / 30) = 15 / 7.
        row = features_at([ev(D - 1 * DAY), ev(D - 20 * DAY)])
        assert row["decay_ratio_7d_30d"] == pytest.approx(15 / 7)

    def test_7d_over_30d_is_zero_with_no_events_in_30_days(self):
        assert features_at([ev(D - 45 * DAY)])["decay_ratio_7d_30d"] == 0.0

    def test_30d_over_previous_30d_is_the_plain_ratio(self):
        events = [ev(D - 10 * DAY) for _ in range(2)] + [ev(D - 40 * DAY) for _ in range(4)]
        assert features_at(events)["decay_ratio_30d_prev30d"] == pytest.approx(0.5)

    def test_30d_over_previous_30d_is_zero_when_both_are_empty(self):
        assert features_at([ev(D - 70 * DAY)])["decay_ratio_30d_prev30d"] == 0.0

    def test_30d_over_previous_30d_is_one_when_only_the_previous_period_is_empty(self):
        assert features_at([ev(D - 3 * DAY) for _ in range(3)])["decay_ratio_30d_prev30d"] == 1.0

    def test_30d_over_previous_30d_is_zero_when_activity_stopped(self):
        assert features_at([ev(D - 45 * DAY)])["decay_ratio_30d_prev30d"] == 0.0


class TestActiveDays:
    def test_events_either_side_of_a_utc_midnight_are_two_active_days(self):
        row = features_at([ev("2026-03-10 23:59:59.999999"), ev("2026-03-11 00:00")])
        assert row["active_days_30d"] == 2

    def test_several_events_on_one_utc_date_are_one_active_day(self):
        row = features_at([ev("2026-03-10 00:00"), ev("2026-03-10 12:00"), ev("2026-03-10 23:59")])
        assert row["active_days_30d"] == 1

    def test_days_outside_the_30_day_window_are_not_active_days(self):
        assert features_at([ev(D - 31 * DAY), ev(D - 2 * DAY)])["active_days_30d"] == 1


class TestAdoptionScores:
    def test_latest_score_is_from_the_latest_event_before_d(self):
        row = features_at(
            [ev(D - 3 * DAY, score=0.1), ev(D - 1 * DAY, score=0.7), ev(D, score=0.9)]
        )
        assert row["adoption_score_latest"] == 0.7

    def test_latest_score_ties_on_timestamp_are_won_by_the_largest_event_id(self):
        same = D - 2 * DAY
        row = features_at(
            [ev(same, score=0.3, event_id="b"), ev(same, score=0.9, event_id="c"),
             ev(same, score=0.6, event_id="a")]
        )
        assert row["adoption_score_latest"] == 0.9

    def test_latest_score_may_be_older_than_every_window(self):
        row = features_at([ev(D - 200 * DAY, score=0.4)])
        assert row["adoption_score_latest"] == 0.4
        assert math.isnan(row["adoption_score_mean_30d"])

    def test_mean_score_averages_the_30_day_window_only(self):
        row = features_at([ev(D - 1 * DAY, score=0.2), ev(D - 29 * DAY, score=0.6),
                           ev(D - 31 * DAY, score=1.0)])
        assert row["adoption_score_mean_30d"] == pytest.approx(0.4)

    def test_change_is_latest_minus_the_score_as_of_30_days_before_d(self):
        # As of D - 30d the latest event is the one at D - 35d (D - 30d itself is not before it).
        row = features_at([ev(D - 35 * DAY, score=0.3), ev(D - 30 * DAY, score=0.5),
                           ev(D - 2 * DAY, score=0.8)])
        assert row["adoption_score_change_30d"] == pytest.approx(0.5)

    def test_change_is_nan_without_history_older_than_30_days(self):
        row = features_at([ev(D - 10 * DAY, score=0.3), ev(D - 2 * DAY, score=0.8)])
        assert math.isnan(row["adoption_score_change_30d"])

    def test_change_is_zero_when_nothing_happened_for_30_days(self):
        assert features_at([ev(D - 40 * DAY, score=0.3)])["adoption_score_change_30d"] == 0.0


class TestRequestTimeFeatures:
    def test_days_since_last_event_is_measured_from_t_not_d(self):
        row = features_at([ev(D - 1 * DAY + pd.Timedelta(hours=12))], t=D + pd.Timedelta(hours=18))
        assert row["last_event_at"] == D - 1 * DAY + pd.Timedelta(hours=12)
        assert row["days_since_last_event"] == pytest.approx(1.25)

    def test_days_since_last_monitoring_run_ignores_other_event_types(self):
        row = features_at([ev(D - 3 * DAY, "monitoring_run"), ev(D - 1 * DAY, "login")])
        assert row["last_monitoring_run_at"] == D - 3 * DAY
        assert row["days_since_last_monitoring_run"] == pytest.approx(3.5)  # t is D + 12h

    def test_days_since_are_nan_with_no_event_before_d(self):
        row = features_at([ev(D + pd.Timedelta(hours=1), "monitoring_run")])
        assert math.isnan(row["days_since_last_event"])
        assert math.isnan(row["days_since_last_monitoring_run"])
        assert pd.isna(row["last_monitoring_run_at"])

    def test_tenure_is_fractional_days_from_signup_to_t(self):
        customers = customers_frame(("c1", D - 10 * DAY))
        row = features_at([], customers=customers)
        assert row["tenure_days"] == pytest.approx(10.5)
        assert row["is_first_90_days"]

    @pytest.mark.parametrize(
        ("tenure", "expected"), [(0.0, True), (89.99, True), (90.0, False)]
    )
    def test_first_90_days_covers_tenure_from_0_up_to_but_excluding_90(self, tenure, expected):
        customers = customers_frame(("c1", T - pd.Timedelta(days=tenure)))
        row = features_at([], customers=customers)
        assert row["tenure_days"] == pytest.approx(tenure)
        assert row["is_first_90_days"] == expected

    def test_tenure_is_unknown_before_signup(self):
        customers = customers_frame(("c1", T + pd.Timedelta(hours=1)))
        row = features_at([], customers=customers)
        assert math.isnan(row["tenure_days"])
        assert not row["is_first_90_days"]

    def test_low_adoption_early_life_needs_early_life_low_score_and_no_growth(self):
        customers = customers_frame(("c1", D - 20 * DAY))
        declining = [ev(D - 15 * DAY, score=0.1), ev(D - 14 * DAY, score=0.1)]  # ratio 0
        assert features_at(declining, customers=customers)["low_adoption_early_life"]
        growing = [ev(D - 1 * DAY, score=0.1)]  # 7d/30d ratio is 30/7 > 1
        assert not features_at(growing, customers=customers)["low_adoption_early_life"]
        high = [ev(D - 15 * DAY, score=0.2)]  # the threshold itself is not low
        assert not features_at(high, customers=customers)["low_adoption_early_life"]
        assert not features_at([], customers=customers)["low_adoption_early_life"]  # no score

    def test_low_adoption_early_life_is_false_after_the_first_90_days(self):
        customers = customers_frame(("c1", D - 100 * DAY))
        row = features_at([ev(D - 15 * DAY, score=0.1)], customers=customers)
        assert not row["low_adoption_early_life"]


class TestMissingCustomer:
    def test_a_customer_missing_from_the_customers_table_has_unknown_tenure(self):
        customers = customers_frame(("someone-else", D - 10 * DAY))
        row = features_at([ev(D - 1 * DAY, score=0.1)], customers=customers)
        assert math.isnan(row["tenure_days"])
        assert not row["is_first_90_days"]
        assert not row["low_adoption_early_life"]
        assert row["event_count_7d"] == 1

    def test_without_a_customers_table_tenure_is_unknown(self):
        row = features_at([ev(D - 1 * DAY)], customers=None)
        assert math.isnan(row["tenure_days"])
        assert not row["is_first_90_days"]


class TestBeforeTheFirstEvent:
    def test_counts_are_zero_and_scores_and_times_are_missing(self):
        row = features_at([ev(D + 5 * DAY, "monitoring_run", score=0.9)])
        for name in ["event_count_7d", "event_count_30d", "event_count_90d",
                     "event_count_prev30d", "active_days_30d", "integration_connect_count_90d"]:
            assert row[name] == 0
        assert (row["decay_ratio_7d_30d"], row["decay_ratio_30d_prev30d"]) == (0.0, 0.0)
        for name in ["adoption_score_latest", "adoption_score_mean_30d",
                     "adoption_score_change_30d", "days_since_last_event"]:
            assert math.isnan(row[name])
        assert pd.isna(row["last_event_at"])


class TestOutputShape:
    def test_keeps_entity_rows_order_index_and_columns_and_adds_every_feature(self):
        events = events_frame(ev(D - 1 * DAY, customer_id="a"), ev(D - 2 * DAY, customer_id="a"),
                              ev(D - 3 * DAY, customer_id="b"))
        entity_rows = pd.DataFrame(
            {"customer_id": ["b", "a", "zz"], "event_timestamp": [T, T, T], "label": [1, 0, 1]},
            index=[30, 10, 20],
        )
        result = brute_force_features(events, None, entity_rows)
        assert list(result.index) == [30, 10, 20]
        assert list(result.columns) == [
            "customer_id", "event_timestamp", "label", *WINDOWED_FEATURES, *REQUEST_TIME_FEATURES
        ]
        assert list(result["event_count_7d"]) == [1, 2, 0]
        assert result["event_count_7d"].dtype == "int64"
        assert result["is_first_90_days"].dtype == bool
        assert str(result["last_event_at"].dt.tz) == "UTC"

    def test_every_event_type_count_is_a_windowed_feature(self):
        assert {f"{t.value}_count_30d" for t in EventType} <= set(WINDOWED_FEATURES)
        assert len(WINDOWED_FEATURES) + len(REQUEST_TIME_FEATURES) == 30


class TestEventCountInAWindow:
    def test_the_window_includes_its_start_and_excludes_its_end(self):
        events = events_frame(ev(D - DAY), ev(D - DAY - US), ev(D - US), ev(D))
        assert brute_force_event_count(events, "c1", D - DAY, D) == 2

    def test_only_the_named_customer_is_counted(self):
        events = events_frame(ev(D - US, customer_id="c1"), ev(D - US, customer_id="c2"))
        assert brute_force_event_count(events, "c2", D - DAY, D) == 1

    def test_bounds_in_another_offset_are_the_same_instants(self):
        events = events_frame(ev(D - US))
        plus_two = D.tz_convert("Etc/GMT-2")
        assert brute_force_event_count(events, "c1", plus_two - DAY, plus_two) == 1

    @pytest.mark.parametrize("n_days", [7, 30, 90])
    def test_at_a_utc_midnight_it_is_the_features_n_day_count(self, n_days):
        raw = [ev(D - k * DAY / 3) for k in range(1, 300, 7)] + [ev(D + US)]
        expected = features_at(raw, t=D)[f"event_count_{n_days}d"]
        assert brute_force_event_count(events_frame(*raw), "c1", D - n_days * DAY, D) == expected


class TestDecayShapeFeatures:
    """Hand-worked values of the 14-day count, the 4-week trend and the two 7-vs-90-day ratios."""

    def test_the_14_day_window_starts_at_d_minus_14_days_inclusive(self):
        row = features_at([ev(D - 14 * DAY), ev(D - 14 * DAY - US), ev(D - US), ev(D)])
        assert row["event_count_14d"] == 2

    def test_a_steady_customer_has_no_trend(self):
        row = features_at([ev(D - (7 * k + 3) * DAY) for k in range(4)])
        assert row["event_trend_4w"] == 0.0

    def test_the_trend_is_the_weekly_slope_over_the_mean_level(self):
        # weekly counts, oldest first: 4, 3, 2, 1 -> slope -1 a week, mean 2.5
        weeks = {3: 4, 2: 3, 1: 2, 0: 1}
        events = [ev(D - (7 * k + 1) * DAY - i * US) for k, n in weeks.items() for i in range(n)]
        assert features_at(events)["event_trend_4w"] == pytest.approx(-1 / 2.5)

    def test_the_trend_ignores_events_28_days_back_or_more(self):
        events = [ev(D - 28 * DAY - US), ev(D - 40 * DAY)]
        assert features_at(events)["event_trend_4w"] == 0.0
        # an event exactly at D - 28 days is the oldest week: slope -0.3 over mean 0.25
        assert features_at([ev(D - 28 * DAY)])["event_trend_4w"] == pytest.approx(-1.2)

    def test_last_week_against_the_90_day_weekly_rate(self):
        # 2 events in the last 7 days, 18 in the 90: weekly rate 18 * 7 / 90 = 1.4
        events = [ev(D - DAY), ev(D - 2 * DAY)] + [ev(D - (10 + 4 * i) * DAY) for i in range(16)]
        assert features_at(events)["decay_ratio_7d_90d"] == pytest.approx(2 / 1.4)
        assert features_at([ev(D - 91 * DAY)])["decay_ratio_7d_90d"] == 0.0

    def test_the_advanced_share_of_last_week_against_the_90_days(self):
        events = [ev(D - DAY, "login"), ev(D - DAY, "monitoring_run"),  # last 7 days: 1/2
                  ev(D - 30 * DAY, "api_call"), ev(D - 31 * DAY, "alert_configured")]
        # 90 days: 3 of 4 beyond login and dashboard views
        assert features_at(events)["advanced_share_ratio_7d_90d"] == pytest.approx(0.5 / 0.75)

    def test_the_advanced_share_ratio_is_null_when_undefined(self):
        assert math.isnan(features_at([ev(D - 30 * DAY, "api_call")])[
            "advanced_share_ratio_7d_90d"])  # nothing in the last 7 days
        assert math.isnan(features_at([ev(D - DAY, "login"), ev(D - 9 * DAY, "dashboard_view")])[
            "advanced_share_ratio_7d_90d"])  # nothing beyond the basics in 90 days

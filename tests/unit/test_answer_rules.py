"""The rules behind "right or refuse": customer status, the online day, training features."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from usage_features.serving.freshness import (
    Freshness,
    days_past_data,
    max_event_lag,
    online_day_problem,
)
from usage_features.serving.status import statuses
from usage_features.training.train import FeatureDataError, FeatureDataWarning, check_features

NAN = np.nan
DAY = 86_400.0
T = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


class TestStatus:
    def test_each_status_from_its_rule(self):
        t = T.timestamp()
        got = statuses(days_since_last_event=np.array([2.0, NAN, NAN, 5.0, 5.0]),
                       tenure_days=np.array([NAN, 40.0, NAN, 10.0, 10.0]),
                       churned_at=np.array([NAN, NAN, NAN, t, t + 1]),
                       as_of=np.full(5, t), history_from=t - 100 * DAY)
        assert got.tolist() == ["active", "active", "unknown", "churned", "active"]

    def test_signed_up_before_the_history_is_incomplete_until_its_longest_window_fits(self):
        t = T.timestamp()

        def status(tenure: float, history_days_ago: float, churned_at: float = NAN) -> str:
            return statuses(np.array([2.0]), np.array([tenure]), np.array([churned_at]),
                            np.array([t]), t - history_days_ago * DAY)[0]

        assert status(tenure=60.0, history_days_ago=50.0) == "incomplete"
        assert status(tenure=100.0, history_days_ago=89.99) == "incomplete"
        assert status(tenure=100.0, history_days_ago=90.0) == "active"  # the 90 days fit
        assert status(tenure=50.0, history_days_ago=50.0) == "active"  # signed up that day
        assert status(tenure=NAN, history_days_ago=50.0) == "active"  # no signup known
        assert status(tenure=60.0, history_days_ago=NAN) == "active"  # no history
        assert status(tenure=60.0, history_days_ago=50.0, churned_at=t) == "churned"


def record(through: datetime | None, pending: date | None = None) -> Freshness:
    return Freshness(as_of=T, max_lag=timedelta(hours=36), latest_event_at=T,
                     materialized_through=through, unmaterialized_since=pending)


class TestOnlineDay:
    def test_any_time_on_the_materialized_day_is_answered_online(self):
        through = T.replace(hour=1)
        for moment in (T.replace(hour=0, minute=0), T, T.replace(hour=23, minute=59)):
            assert online_day_problem(record(through), moment) is None

    def test_a_time_on_another_day_is_refused(self):
        problem = online_day_problem(record(T), T - timedelta(days=1))
        assert "not on the online store's day (2026-03-10" in problem
        assert online_day_problem(record(T), T + timedelta(days=1)) is not None

    def test_a_pending_build_or_no_materialize_is_refused(self):
        assert "build changed features" in online_day_problem(record(T, date(2026, 3, 2)), T)
        assert "never materialized" in online_day_problem(record(None), T)

    def test_days_past_the_data_count_from_the_day_after_the_latest_event(self):
        latest = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        assert days_past_data(datetime(2026, 3, 2, 23, 59, tzinfo=UTC), latest) == 0
        assert days_past_data(datetime(2026, 3, 3, 0, 0, tzinfo=UTC), latest) == 1
        assert days_past_data(T, latest) == 8
        assert days_past_data(T, None) == 0


class TestMaxLag:
    def test_the_default_is_36_hours_and_the_environment_overrides_it(self, monkeypatch):
        monkeypatch.delenv("USAGE_FEATURES_MAX_LAG_HOURS", raising=False)
        assert max_event_lag() == timedelta(hours=36)
        monkeypatch.setenv("USAGE_FEATURES_MAX_LAG_HOURS", "12")
        assert max_event_lag() == timedelta(hours=12)
        assert max_event_lag(2) == timedelta(hours=2)

    def test_a_non_positive_lag_is_refused(self):
        with pytest.raises(ValueError, match="positive"):
            max_event_lag(0)


class TestTrainingFeatureCheck:
    def rows(self, **columns) -> pd.DataFrame:
        return pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0, 1, 0], **columns})

    def test_an_entirely_null_feature_is_named_with_what_to_run(self):
        rows = self.rows(tenure_days=[NAN, NAN, NAN])
        with pytest.raises(FeatureDataError, match=r"entirely null: tenure_days.*load-customers"):
            check_features(rows, ["a", "b", "tenure_days"])

    def test_a_constant_feature_is_named_with_its_value_in_a_warning(self):
        rows = self.rows(monitoring_run_count_30d=[0, 0, 0])
        with pytest.warns(FeatureDataWarning, match=r"monitoring_run_count_30d \(always 0\)"):
            check_features(rows, ["a", "b", "monitoring_run_count_30d"])

    def test_varying_features_pass(self):
        check_features(self.rows(c=[NAN, 1.0, NAN]), ["a", "b", "c"])

"""The feature spec: windows, the feature list, the SQL compiled from it, request-time features."""

import pandas as pd
import pytest

from usage_features.domain import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD, EventType
from usage_features.features import request_time
from usage_features.features.spec import (
    HISTORY,
    PREV_30,
    W7,
    WINDOWED,
    Feature,
    Group,
    Window,
    change_offsets,
    feature_groups,
    served_features,
)
from usage_features.features.sql import DIALECTS, DUCKDB, SPARK, features_sql

T = pd.Timestamp("2026-03-15 12:00", tz="UTC")


class TestWindows:
    def test_a_window_excludes_the_as_of_day_itself(self):
        # an event of day d is in [D - 7, D) for D = d + 1 ... d + 7
        assert (W7.enters, W7.leaves) == (1, 8)

    def test_an_offset_window_ends_where_the_recent_one_starts(self):
        # [D - 60, D - 30): from D = d + 31 to d + 60
        assert (PREV_30.enters, PREV_30.leaves) == (31, 61)

    def test_history_reaches_back_to_the_first_event(self):
        assert (HISTORY.enters, HISTORY.leaves) == (1, None)

    def test_an_event_enters_the_day_after_and_leaves_after_n_days(self):
        assert Window("w", 30).change_offsets() == {1, 31}

    def test_features_can_only_change_on_these_days_after_an_event(self):
        assert change_offsets() == [1, 8, 15, 22, 29, 31, 61, 91]


class TestTheFeatureList:
    def test_names_are_unique(self):
        names = [f.name for f in WINDOWED]
        assert len(names) == len(set(names))

    def test_every_event_type_has_a_30_day_count(self):
        served = {f.name for f in served_features()}
        assert {f"{t.value}_count_30d" for t in EventType} <= served

    def test_the_label_and_internal_inputs_are_never_served(self):
        served = {f.name for f in served_features()}
        assert not served & {"churned_at", "last_event_at", "adoption_score_30d_ago"}

class TestTheCompiledQuery:
    @pytest.mark.parametrize("dialect", [DUCKDB, SPARK], ids=lambda d: d.name)
    def test_each_dialect_selects_exactly_the_key_and_the_stored_features(self, dialect):
        stored = ", ".join(f.name for f in WINDOWED if f.stored)
        changed = dialect.distinct.format(a="previous", b=dialect.row.format(values=stored))
        assert features_sql("daily", dialect).endswith(
            f" AS feature_timestamp, day,\n       {stored}\nFROM changes\nWHERE {changed}")

    def test_every_engine_speaks_a_dialect_the_sql_is_compiled_for(self):
        from usage_features.adapters.duckdb_engine import DuckDBEngine
        from usage_features.adapters.spark_engine import SparkEngine

        assert {DuckDBEngine.dialect, SparkEngine.dialect} == set(DIALECTS)


class TestFeatureGroups:
    def test_every_served_feature_is_in_exactly_one_group(self):
        grouped = [name for names in feature_groups().values() for name in names]
        assert sorted(grouped) == sorted(f.name for f in served_features())
        assert len(grouped) == len(set(grouped))

    def test_every_group_but_the_declared_vocabularies_roles_has_a_served_feature(self):
        assert list(feature_groups()) == [g for g in Group if g != Group.CORE_LOCK_IN]
        assert all(feature_groups().values())

    def test_a_served_feature_without_a_group_is_refused(self):
        with pytest.raises(ValueError, match="'x' needs a group"):
            Feature("x", "int64", "", "x")
        assert Feature("x", "int64", "", "x", served=False).group is None

    def test_the_early_life_features_describe_the_domains_thresholds(self):
        described = {f.name: f.description for f in served_features()}
        assert f"first {EARLY_LIFE_DAYS} days" in described["is_first_90_days"]
        assert f"below {LOW_ADOPTION_THRESHOLD} " in described["low_adoption_early_life"]


class TestRequestTimeFeatures:
    def inputs(self, **columns):
        base = {"last_event_at": [T - pd.Timedelta(days=2)],
                "last_monitoring_run_at": [pd.NaT],
                "signup_at": [T - pd.Timedelta(days=30)],
                "adoption_score_latest": [0.1], "decay_ratio_7d_30d": [0.5]}
        base.update(columns)
        return pd.DataFrame(base)

    def test_recency_and_tenure_are_measured_from_the_request_time(self):
        out = request_time.compute(self.inputs(), as_of=T + pd.Timedelta(hours=12))
        assert out.days_since_last_event.tolist() == [2.5]
        assert out.tenure_days.tolist() == [30.5]
        assert out.days_since_last_monitoring_run.isna().all()

    def test_the_entity_rows_timestamp_is_the_request_time_in_historical_retrieval(self):
        frame = self.inputs(event_timestamp=[T])
        assert request_time.compute(frame).days_since_last_event.tolist() == [2.0]

    def test_low_adoption_early_life_needs_all_three_conditions(self):
        assert request_time.compute(self.inputs(), as_of=T).low_adoption_early_life.tolist() == [
            True]
        for change in ({"adoption_score_latest": [0.2]}, {"decay_ratio_7d_30d": [1.0]},
                       {"signup_at": [T - pd.Timedelta(days=90)]}):
            out = request_time.compute(self.inputs(**change), as_of=T)
            assert out.low_adoption_early_life.tolist() == [False], change

    def test_an_unknown_customer_is_not_in_early_life(self):
        out = request_time.compute(self.inputs(signup_at=[pd.NaT]), as_of=T)
        assert out.tenure_days.isna().all() and not out.is_first_90_days.any()

    def test_tenure_is_unknown_before_signup(self):
        out = request_time.compute(self.inputs(signup_at=[T + pd.Timedelta(hours=1)]), as_of=T)
        assert out.tenure_days.isna().all()

"""The compiled DuckDB feature queries, run directly (no build, no Feast): their rows, and
each row equal to the brute-force oracle at its timestamp."""

import duckdb
import pandas as pd
import pytest

from tests.factories import random_events
from tests.reference import brute_force_features
from usage_features.features.spec import WINDOWED
from usage_features.features.sql import DUCKDB, daily_sql, features_sql


def compiled_feature_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The compiled DuckDB queries run over ``events``: ``daily_sql`` then ``features_sql``."""
    with duckdb.connect() as con:
        con.register("events", events)
        con.execute(f"CREATE TABLE daily AS {daily_sql('events', DUCKDB)}")
        return con.execute(f"{features_sql('daily', DUCKDB)} ORDER BY customer_id, day").df()


class TestTheCompiledQuery:
    def test_its_columns_are_the_key_then_every_stored_feature_in_spec_order(self):
        rows = compiled_feature_rows(random_events(seed=1, customers=2, days=20))
        assert list(rows.columns) == ["customer_id", "feature_timestamp", "day",
                                      *[f.name for f in WINDOWED if f.stored]]

    def test_one_event_gives_a_row_on_each_day_a_window_changes_and_no_other(self):
        event = pd.DataFrame({"event_id": ["e1"], "customer_id": ["c1"],
                              "timestamp": [pd.Timestamp("2026-03-01 10:00", tz="UTC")],
                              "event_type": ["login"], "feature_adoption_score": [0.5]})
        rows = compiled_feature_rows(event)
        day = pd.Timestamp("2026-03-01", tz="UTC")
        assert rows.feature_timestamp.tolist() == [day + pd.Timedelta(days=k)
                                                   for k in (1, 8, 15, 22, 29, 31, 61, 91)]
        counts = ["event_count_7d", "event_count_14d", "event_count_30d", "event_count_prev30d",
                  "event_count_90d"]
        assert rows[counts].to_numpy().tolist() == [
            [1, 1, 1, 0, 1], [0, 1, 1, 0, 1], [0, 0, 1, 0, 1], [0, 0, 1, 0, 1], [0, 0, 1, 0, 1],
            [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
        # the event walks through the four weeks behind the trend, newest (weight 6) to oldest
        assert rows.event_trend_4w.tolist()[:5] == pytest.approx([6 / 5, 2 / 5, -2 / 5, -6 / 5, 0])

    def test_a_row_equal_to_the_customers_previous_one_is_dropped(self):
        rows = compiled_feature_rows(random_events(seed=2, customers=3, days=60))
        stored = [f.name for f in WINDOWED if f.stored]
        for _, mine in rows.groupby("customer_id"):
            values = mine[stored].astype(str).to_numpy()
            assert not (values[1:] == values[:-1]).all(axis=1).any()


def test_every_row_equals_the_brute_force_oracle_at_its_timestamp():
    events = random_events(seed=5, customers=4, days=120)
    rows = compiled_feature_rows(events)
    entity = pd.DataFrame({"customer_id": rows.customer_id,
                           "event_timestamp": rows.feature_timestamp})
    expected = brute_force_features(events, None, entity)
    stored = [f.name for f in WINDOWED if f.stored]
    for name in ("last_event_at", "last_monitoring_run_at"):  # stored to the second
        expected[name] = expected[name].dt.floor("s").astype("datetime64[us, UTC]")
        rows[name] = rows[name].astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(rows[stored], expected[stored], check_dtype=False,
                                  check_exact=False, rtol=1e-12)

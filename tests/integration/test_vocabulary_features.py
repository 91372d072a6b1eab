"""A declared vocabulary's compiled feature queries equal the brute-force oracle on every row
they produce; a 50-type vocabulary compiles for both engines."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.factories import random_events
from tests.reference_vocabulary import brute_force_vocabulary_features
from usage_features.domain.vocabulary import parse_vocabulary
from usage_features.features.spec import feature_spec
from usage_features.features.sql import DUCKDB, SPARK, daily_sql, features_sql

TYPES = {"create-deal": "core", "log_call": "core", "connect_mailbox": "lock_in",
         "login": "basic", "view_dashboard": "basic", "search": None, "add_contact": None,
         "email lead": None}


def foreign_events(seed: int) -> pd.DataFrame:
    """The factory's irregular log, its eight seed types renamed into this product's names and
    a few undeclared ones."""
    events = random_events(seed=seed, customers=4, days=120)
    rng = np.random.default_rng(seed)
    names = [*TYPES, "export_pdf", "print"]
    events["event_type"] = rng.choice(names, len(events), p=[0.08] * 8 + [0.18, 0.18])
    return events


def compiled_rows(events, spec):
    with duckdb.connect() as con:
        con.register("events", events)
        con.execute(f"CREATE TABLE daily AS {daily_sql('events', DUCKDB, spec)}")
        return con.execute(f"{features_sql('daily', DUCKDB, spec)} ORDER BY customer_id, day").df()


@pytest.mark.parametrize("unlisted", ["other", "reject"])
def test_every_row_equals_the_oracle_at_its_timestamp(unlisted):
    vocabulary = parse_vocabulary({n: ({"role": r} if r else {}) for n, r in TYPES.items()},
                                  unlisted)
    spec = feature_spec(vocabulary)
    events = foreign_events(seed=3)
    if unlisted == "reject":  # ingest would have quarantined them
        events = events[events.event_type.isin(list(TYPES))]
    rows = compiled_rows(events, spec)
    rows["event_timestamp"] = rows.feature_timestamp + pd.Timedelta(hours=7)
    expected = brute_force_vocabulary_features(events, TYPES, unlisted, rows)
    stored = [c for c in expected.columns if c in rows.columns]
    assert {"adoption_score_latest", "email_lead_count_30d", "lock_in_event_count_90d"} <= set(
        stored)
    assert ("other_count_30d" in stored) == (unlisted == "other")
    pd.testing.assert_frame_equal(rows[stored], expected[stored], check_dtype=False,
                                  check_exact=False, rtol=1e-12)
    # the core recency's stored input, to the second, gives the oracle's request-time value
    days = (rows.event_timestamp - rows.last_core_event_at) / pd.Timedelta(days=1)
    np.testing.assert_allclose(days, expected.days_since_last_core_event, rtol=1e-12)


def test_a_fifty_type_vocabulary_compiles_for_duckdb_and_spark():
    vocabulary = parse_vocabulary({f"action_{i:02d}": ({"role": "core"} if i < 3 else {})
                                   for i in range(50)}, "other")
    spec = feature_spec(vocabulary)
    assert len([f for f in spec.served if f.name.endswith("_count_30d")]) == 52  # + total
    for dialect in (DUCKDB, SPARK):
        assert "action_49" in features_sql("daily", dialect, spec)
    events = foreign_events(seed=4).assign(
        event_type=lambda e: "action_" + (e.index % 50).astype(str).str.zfill(2))
    rows = compiled_rows(events, spec)
    assert rows.adoption_score_latest.between(0, 1).all() and len(rows)


def test_a_daily_count_beyond_the_packed_range_stops_the_build_instead_of_overflowing():
    from usage_features.features.sql import PACK_DAILY_LIMIT

    spec = feature_spec(parse_vocabulary({"search": {}, "login": {}}))
    events = foreign_events(seed=5).assign(event_type="search").iloc[:5]
    with duckdb.connect() as con:
        con.register("events", events)
        con.execute(f"CREATE TABLE daily AS {daily_sql('events', DUCKDB, spec)}")
        assert len(con.execute(features_sql("daily", DUCKDB, spec)).fetchall())
        con.execute(f"UPDATE daily SET n_search = {PACK_DAILY_LIMIT + 1}")
        with pytest.raises(duckdb.Error, match="beyond the packed counts"):
            con.execute(features_sql("daily", DUCKDB, spec)).fetchall()


def test_a_ninety_day_count_past_31_bits_is_exact_in_its_wider_pack():
    # 30 M events a day (within the 31-bit packs' daily limit) for 90 days: 2.7 G in 90 days,
    # past what a 31-bit pack could hold, so the 90-day counts need the 42-bit packs
    spec = feature_spec(parse_vocabulary({"search": {"role": "lock_in"}, "login": {}}))
    days = pd.date_range("2026-01-01 12:00", periods=90, freq="D", tz="UTC")
    events = pd.DataFrame({"event_id": [f"e{i}" for i in range(90)], "customer_id": "c1",
                           "timestamp": days, "event_type": "search",
                           "feature_adoption_score": None})
    daily_count = 30_000_000
    with duckdb.connect() as con:
        con.register("events", events)
        con.execute(f"CREATE TABLE daily AS {daily_sql('events', DUCKDB, spec)}")
        con.execute(f"UPDATE daily SET n_events = {daily_count}, n_search = {daily_count}")
        rows = con.execute(f"{features_sql('daily', DUCKDB, spec)} ORDER BY day").df()
    after = rows[rows.feature_timestamp == pd.Timestamp("2026-04-01", tz="UTC")].iloc[0]
    assert after.event_count_90d == 90 * daily_count
    assert after.lock_in_event_count_90d == 90 * daily_count
    assert after.event_count_30d == after.search_count_30d == 30 * daily_count
    assert after.event_count_prev30d == 30 * daily_count


def test_a_window_aggregate_with_no_running_form_is_refused():
    from dataclasses import replace

    from usage_features.features.spec import Feature

    spec = feature_spec()
    bounded_max = Feature("most_in_a_day_7d", "int64", "max(n_events) OVER w7", "refused",
                          stored=False, served=False)
    with pytest.raises(ValueError, match="no running form"):
        features_sql("daily", DUCKDB, replace(spec, windowed=(*spec.windowed, bounded_max)))


def test_a_sum_outside_coalesce_is_null_over_an_empty_window_as_in_sql():
    # a window's running sum is 0 once its values have left; SQL's sum over no rows is null,
    # which the running count of non-null values keeps (only coalesce(..., 0) makes it 0)
    from dataclasses import replace

    from usage_features.features.spec import Feature

    spec = feature_spec()
    raw = Feature("raw_sum_7d", "int64", "sum(n_events) OVER w7", "SQL's sum", served=False)
    spec = replace(spec, windowed=(*spec.windowed, raw))
    event = pd.DataFrame({"event_id": ["e1"], "customer_id": ["c1"],
                          "timestamp": [pd.Timestamp("2026-03-01 10:00", tz="UTC")],
                          "event_type": ["login"], "feature_adoption_score": [0.5]})
    rows = compiled_rows(event, spec).set_index("feature_timestamp")
    day = pd.Timestamp("2026-03-01", tz="UTC")
    assert rows.raw_sum_7d[day + pd.Timedelta(days=1)] == 1
    assert pd.isna(rows.raw_sum_7d[day + pd.Timedelta(days=8)])
    assert rows.event_count_7d[day + pd.Timedelta(days=8)] == 0

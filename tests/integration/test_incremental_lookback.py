"""An incremental build reads only the daily rows of the lookback before each touched customer's
first recomputed day, and one "carry" row of the older rows' aggregates, yet writes exactly the
month files a full build of the same log writes: every file, every column, every value.

The deliveries are shaped so that the lookback and the carry matter: a customer silent for far
longer than the lookback (its recency of the core event, its adoption score 30 days ago and its
latest event come from the carry), a customer whose first event ever is on the day delivered, a
day that is the first of a month, a late event for a day long past (the recompute reaches back
to it), the seed vocabulary (adoption score) and a 50-type foreign one (breadth). And the
comparison fails when the lookback is too short or the carry is left out.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.conftest import copy_feature_repo
from tests.factories import T0, random_events
from usage_features.config import RepoPaths
from usage_features.features import build as build_module
from usage_features.features.build import build_features
from usage_features.features.spec import feature_spec
from usage_features.features.sql import carry_sql, lookback_days
from usage_features.ingestion import ingest_files
from usage_features.ingestion.settings import load_vocabulary

DAYS = 217  # T0 is 2026-03-01: day 214 is 2026-10-01
DELIVERED = range(211, DAYS)  # each its own delivery and build, as the daily loop does
MONTH_START = 214
LATE = 100  # a late event for this day arrives with the month's first day


def event(customer: str, day: int, event_type: str, score: float, hour: int = 12) -> dict:
    return {"event_id": str(uuid.uuid4()), "customer_id": customer,
            "timestamp": pd.Timestamp(T0) + timedelta(days=day, hours=hour),
            "event_type": event_type, "feature_adoption_score": score}


def shaped_log(seed: int) -> pd.DataFrame:
    """An irregular log, plus the customers the lookback's edge cases need; a ``deliver``
    column: the day of the delivery an event arrives in (``-1``: with the history)."""
    events = random_events(seed=seed, customers=30, days=DAYS)
    day = ((events.timestamp - pd.Timestamp(T0)) // pd.Timedelta(days=1)).astype(int)
    events["deliver"] = np.where(day < DELIVERED[0], -1, day)
    special = [
        # silent from day 26 to the month's first day (gap > lookback): a basic event then,
        # so its core recency and its score 30 days ago come from before the gap
        *(event("cust-gap", d, t, s) for d, t, s in [
            (3, "login", 0.2), (10, "monitoring_run", 0.9), (25, "login", 0.35)]),
        event("cust-gap", MONTH_START, "login", 0.5),
        # the first event ever on a delivered day
        event("cust-new", MONTH_START + 1, "monitoring_run", 0.7, hour=0),
        # active long ago and lately; one late event for a day long past
        *(event("cust-late", d, "dashboard_view", 0.1 + d / 1000) for d in range(0, DAYS, 3)),
        event("cust-late", LATE, "integration_connect", 0.95),
    ]
    special = pd.DataFrame(special)
    special["timestamp"] = pd.to_datetime(special.timestamp, utc=True)
    special_day = (special.timestamp - pd.Timestamp(T0)) // pd.Timedelta(days=1)
    special["deliver"] = np.where(special_day < DELIVERED[0], -1, special_day)
    special.loc[special_day == LATE, "deliver"] = MONTH_START
    return pd.concat([events, special], ignore_index=True)


def deliveries(events: pd.DataFrame) -> list[pd.DataFrame]:
    return [events[events.deliver == d].drop(columns="deliver")
            for d in [-1, *DELIVERED] if (events.deliver == d).any()]


def month_files(paths: RepoPaths) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_parquet(p) for p in sorted(paths.customer_usage.glob("*.parquet"))}


def assert_same_months(incremental: RepoPaths, full: RepoPaths) -> None:
    got, want = month_files(incremental), month_files(full)
    assert list(got) == list(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=name)


def build_both(batches: list, tmp_path, settings: str | None = None,
               convert=lambda frame, k: frame, engine: str = "duckdb"
               ) -> tuple[RepoPaths, RepoPaths]:
    """The same files ingested one delivery at a time (a build after each, with ``engine``)
    and all at once (built with DuckDB)."""
    incremental = RepoPaths(copy_feature_repo(tmp_path / "incremental"))
    full = RepoPaths(copy_feature_repo(tmp_path / "full"))
    files = []
    for k, frame in enumerate(batches):
        files.append(tmp_path / f"delivery{k:02d}.parquet")
        convert(frame, k).to_parquet(files[-1], index=False)
    for paths in (incremental, full):
        if settings is not None:
            (paths.repo / "usage_features.yaml").write_text(settings)
    for path in files:
        ingest_files([path], incremental)
        build_features(incremental, engine=engine)
    ingest_files(files, full)
    build_features(full)
    return incremental, full


@pytest.fixture(scope="module")
def seed_log() -> list[pd.DataFrame]:
    return deliveries(shaped_log(seed=17))


def test_daily_builds_after_a_long_gap_a_first_day_and_a_late_event_equal_a_full_build(
        seed_log, tmp_path):
    spec = feature_spec()
    assert carry_sql(spec) is not None  # the lookback path, not the whole history
    incremental, full = build_both(seed_log, tmp_path)

    assert_same_months(incremental, full)
    rows = pd.concat(month_files(full).values())
    first_day = MONTH_START + (T0.date() - date(1970, 1, 1)).days + 1
    gap = rows[(rows.customer_id == "cust-gap") & (rows.day >= first_day)]
    # what only the carry holds: the core event of day 10, the score of day 25 (30 days ago)
    assert (gap.last_monitoring_run_at.dt.day == 11).all() and len(gap)
    assert np.isclose(gap.adoption_score_change_30d.iloc[0], 0.5 - 0.35)
    assert "cust-new" in set(rows.customer_id)


@pytest.mark.parametrize("broken", ["short lookback", "no carry"])
def test_the_comparison_catches_a_short_lookback_or_a_missing_carry(seed_log, tmp_path,
                                                                    monkeypatch, broken):
    if broken == "short lookback":
        monkeypatch.setattr(build_module, "lookback_days", lambda spec: 20)
    else:
        monkeypatch.setattr(build_module, "carry_sql", lambda spec: {})
    incremental, full = build_both(seed_log, tmp_path)

    with pytest.raises(AssertionError):
        assert_same_months(incremental, full)


def test_a_fifty_type_foreign_vocabulary_with_breadth_builds_the_same(tmp_path):
    from usage_features.simulation.foreign import (
        as_foreign_export,
        crm_vocabulary,
        foreign_settings_yaml,
    )

    vocabulary = crm_vocabulary(50)
    settings = foreign_settings_yaml(vocabulary)
    settings = settings[:settings.index("customers:")]
    batches = deliveries(shaped_log(seed=23))

    def convert(frame: pd.DataFrame, k: int) -> pd.DataFrame:
        frame = frame.assign(customer_id=frame.customer_id.str.replace(
            "cust-gap", "cust-901").str.replace("cust-new", "cust-902").str.replace(
            "cust-late", "cust-903"), timestamp=frame.timestamp.astype("datetime64[us, UTC]"))
        table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
        return as_foreign_export(table, vocabulary, seed=k).to_pandas()

    incremental, full = build_both(batches, tmp_path, settings, convert)
    spec = feature_spec(load_vocabulary(full.repo))
    assert spec.breadth_counts and len(spec.vocabulary.types) == 50
    assert carry_sql(spec) is not None and lookback_days(spec) > lookback_days(feature_spec())

    assert_same_months(incremental, full)


@pytest.mark.spark
@pytest.mark.slow  # four Spark builds
def test_spark_daily_builds_with_the_lookback_equal_a_full_duckdb_build(tmp_path):
    from tests.integration.test_spark import require_spark

    require_spark()
    events = shaped_log(seed=17)
    events.loc[events.deliver < MONTH_START, "deliver"] = -1
    incremental, full = build_both(deliveries(events), tmp_path, engine="spark")

    got, want = month_files(incremental), month_files(full)
    assert list(got) == list(want)
    for name in want:  # the score sum's decimals: see test_spark.assert_tables_equal
        pd.testing.assert_frame_equal(got[name], want[name], obj=name, rtol=1e-12, atol=0)

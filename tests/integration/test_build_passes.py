"""A build in several passes writes exactly the one-pass tables.

The DuckDB engine aggregates the event log a batch of whole days at a time, and turns a bounded
number of daily rows into feature rows per pass (customers split by a hash), so a build's
memory and time per event stay the same at any scale. Windows are per customer and every
customer's rows fall in one pass, so nothing may change: here the pass size is forced small
enough for many passes and every table is compared value for value with a one-pass build, for
a full build and for incremental builds of late, out-of-order batches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import copy_feature_repo
from tests.factories import random_events
from usage_features.adapters.duckdb_engine import DuckDBEngine
from usage_features.adapters.row_sidecar import Sidecar, sidecar_path
from usage_features.config import RepoPaths
from usage_features.features.build import build_features
from usage_features.ingestion import ingest_files


def built(events: pd.DataFrame, repo, batches: int) -> dict[str, pd.DataFrame]:
    """``events`` ingested in ``batches`` random batches, built after each one."""
    paths = RepoPaths(copy_feature_repo(repo))
    batch = np.random.default_rng(3).integers(0, batches, len(events))
    for b in range(batches):
        source = repo / f"batch{b}.parquet"
        events[batch == b].to_parquet(source, index=False)
        ingest_files([source], paths)
        build_features(paths)
    keys = ["customer_id", "day"]
    return {"customer_usage": pd.read_parquet(paths.customer_usage).sort_values(keys),
            "daily": pd.read_parquet(paths.daily).sort_values(keys)}


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return random_events(seed=11, customers=40, days=160)


@pytest.fixture(scope="module")
def one_pass(events, tmp_path_factory) -> dict[str, pd.DataFrame]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DuckDBEngine, "rows_per_pass", None)
        patch.setattr(DuckDBEngine, "lookback_rows_per_pass", None)
        patch.setattr(DuckDBEngine, "event_bytes_per_pass", None)
        return built(events, tmp_path_factory.mktemp("one"), batches=1)


@pytest.mark.parametrize("batches", [1, 3])
def test_a_build_in_many_passes_equals_a_build_in_one(events, one_pass, tmp_path, monkeypatch,
                                                      batches):
    passes, appended = [], []
    stage, append = DuckDBEngine.stage, DuckDBEngine.append
    monkeypatch.setattr(DuckDBEngine, "rows_per_pass", 300)  # ~4,000 daily rows: 10+ passes
    monkeypatch.setattr(DuckDBEngine, "lookback_rows_per_pass", 300)  # and each day's build
    monkeypatch.setattr(DuckDBEngine, "event_bytes_per_pass", 20_000)  # days in many batches
    monkeypatch.setattr(DuckDBEngine, "stage", lambda self, query, key, directory, part: (
        passes.append(part), stage(self, query, key, directory, part)))
    monkeypatch.setattr(DuckDBEngine, "append", lambda self, name, query: (
        appended.append(name), append(self, name, query)))

    tables = built(events, tmp_path, batches)

    assert len(passes) >= 5 * batches
    assert appended.count("daily") >= 5 * batches
    for name, expected in one_pass.items():
        pd.testing.assert_frame_equal(tables[name].reset_index(drop=True),
                                      expected.reset_index(drop=True), check_exact=True, obj=name)
    assert len(tables["customer_usage"]) > 1000


def test_every_month_file_has_a_current_sidecar_after_a_build(events, tmp_path):
    """Rewritten months get a new sidecar; a month left alone keeps its own, or gets one if it
    has none (a repo built before sidecars, or one deleted)."""
    paths = RepoPaths(copy_feature_repo(tmp_path / "repo"))
    late = events.timestamp >= events.timestamp.max().normalize()
    for part, name in ((events[~late], "early"), (events[late], "late")):
        part.to_parquet(tmp_path / f"{name}.parquet", index=False)
    ingest_files([tmp_path / "early.parquet"], paths)
    build_features(paths)
    months = sorted(paths.customer_usage.glob("*.parquet"))
    first, last = months[0], months[-1]
    kept = sidecar_path(first).read_bytes()
    sidecar_path(months[1]).unlink()

    ingest_files([tmp_path / "late.parquet"], paths)
    summary = build_features(paths)

    assert first.stem not in summary.months_rewritten and last.stem in summary.months_rewritten
    assert all(Sidecar.open(m) is not None for m in paths.customer_usage.glob("*.parquet"))
    assert sidecar_path(first).read_bytes() == kept

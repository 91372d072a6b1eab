"""Property: the Parquet event log's ``count_events_last_n_days`` equals the brute-force oracle.

Each example ingests its events into a fresh repo (DuckDB, files): an integration test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_count_property import (
    as_of_from,
    build,
    events_strategy,
    offsets,
    oracle,
    zones,
)
from usage_features.config import RepoPaths
from usage_features.ingestion.ingest import event_repository


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events_strategy, n_days=st.integers(1, 120), as_of_offset=offsets, zone=zones)
def test_parquet_count_equals_the_oracle(raw, n_days, as_of_offset, zone):
    events = build(raw)
    as_of = as_of_from(as_of_offset, zone)
    with tempfile.TemporaryDirectory() as tmp:
        repository = event_repository(RepoPaths(Path(tmp)))
        repository.add(events)
        assert repository.count_events_last_n_days("c1", n_days, as_of=as_of) == oracle(
            events, "c1", n_days, as_of)

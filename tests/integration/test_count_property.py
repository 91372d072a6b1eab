"""Property: count_events_last_n_days equals a brute-force count, on every adapter we ship."""

from __future__ import annotations

import tempfile
from datetime import timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usage_features.adapters.memory import InMemoryUsageRepository
from usage_features.adapters.parquet_repository import ParquetUsageRepository
from usage_features.config import RepoPaths
from tests.factories import T0, make_event

offsets = st.integers(min_value=-100 * 86_400_000_000, max_value=5 * 86_400_000_000)
events_strategy = st.lists(
    st.tuples(st.sampled_from(["c1", "c2"]), offsets), min_size=0, max_size=40
)


def brute_force(events, customer_id, n_days, as_of):
    start = as_of - timedelta(days=n_days)
    return sum(1 for e in events if e.customer_id == customer_id and start <= e.timestamp < as_of)


def build(raw):
    return [make_event(customer_id=c, timestamp=T0 + timedelta(microseconds=us)) for c, us in raw]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events_strategy, n_days=st.integers(1, 120), as_of_offset=offsets,
       as_of_zone=st.integers(-12, 14))
def test_parquet_count_equals_brute_force(raw, n_days, as_of_offset, as_of_zone):
    events = build(raw)
    # as_of in an arbitrary UTC offset: the window is the same instant range whatever the zone
    as_of = (T0 + timedelta(microseconds=as_of_offset)).astimezone(
        timezone(timedelta(hours=as_of_zone)))
    with tempfile.TemporaryDirectory() as tmp:
        repository = ParquetUsageRepository(RepoPaths(Path(tmp)))
        repository.add(events)
        assert repository.count_events_last_n_days("c1", n_days, as_of=as_of) == brute_force(
            events, "c1", n_days, as_of)


@settings(max_examples=200, deadline=None)
@given(raw=events_strategy, n_days=st.integers(1, 120), as_of_offset=offsets)
def test_in_memory_count_equals_brute_force(raw, n_days, as_of_offset):
    events = build(raw)
    as_of = T0 + timedelta(microseconds=as_of_offset)
    repository = InMemoryUsageRepository(events)
    assert repository.count_events_last_n_days("c1", n_days, as_of=as_of) == brute_force(
        events, "c1", n_days, as_of)

"""Property: the in-memory adapter's ``count_events_last_n_days`` equals the brute-force oracle.

The window is ``[as_of - n days, as_of)`` (``last_n_days``); the oracle counts it from the raw
events (:func:`tests.reference.brute_force_event_count`). The Parquet adapter is held to the
same oracle in ``tests/integration/test_parquet_count_property.py``.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import T0, make_event
from tests.reference import brute_force_event_count
from usage_features.adapters.memory import InMemoryUsageRepository

#: Event and as-of times around T0, in microseconds (100 days before to 5 after).
offsets = st.integers(min_value=-100 * 86_400_000_000, max_value=5 * 86_400_000_000)
events_strategy = st.lists(
    st.tuples(st.sampled_from(["c1", "c2"]), offsets), min_size=0, max_size=40
)
zones = st.integers(-12, 14).map(lambda hours: timezone(timedelta(hours=hours)))


def build(raw):
    return [make_event(customer_id=c, timestamp=T0 + timedelta(microseconds=us)) for c, us in raw]


def oracle(events, customer_id, n_days, as_of) -> int:
    """The oracle's count over the events as a raw-event frame."""
    frame = pd.DataFrame({"customer_id": [e.customer_id for e in events],
                          "timestamp": pd.to_datetime([e.timestamp for e in events], utc=True)})
    return brute_force_event_count(frame, customer_id, as_of - timedelta(days=n_days), as_of)


def as_of_from(offset: int, zone: timezone):
    """T0 + ``offset`` microseconds, expressed in ``zone`` (the same instant in any zone)."""
    return (T0 + timedelta(microseconds=offset)).astimezone(zone)


@settings(max_examples=200, deadline=None)
@given(raw=events_strategy, n_days=st.integers(1, 120), as_of_offset=offsets, zone=zones)
def test_in_memory_count_equals_the_oracle(raw, n_days, as_of_offset, zone):
    events = build(raw)
    as_of = as_of_from(as_of_offset, zone)
    repository = InMemoryUsageRepository(events)
    assert repository.count_events_last_n_days("c1", n_days, as_of=as_of) == oracle(
        events, "c1", n_days, as_of)

"""The simulation's arrays as Arrow tables (``EVENT_SCHEMA``, ``CUSTOMER_SCHEMA``, truth)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from usage_features.schema import CUSTOMER_SCHEMA, EVENT_SCHEMA
from usage_features.simulation.dynamics import Outcome
from usage_features.simulation.population import DAY_US, EVENT_TYPES, NEVER, PLANS, Population
from usage_features.simulation.text import uuid_strings

#: Rows per Arrow chunk of the events table (keeps string offsets small and memory flat).
CHUNK_ROWS = 1 << 20
TIMESTAMP = pa.timestamp("us", tz="UTC")

TRUTH_SCHEMA = pa.schema([
    pa.field("customer_id", pa.string(), nullable=False),
    pa.field("churn_mode", pa.string(), nullable=False),
    pa.field("decided_at", TIMESTAMP),
    pa.field("monitoring_from", TIMESTAMP),
    pa.field("integrated_at", TIMESTAMP),
    pa.field("dips", pa.int32(), nullable=False),
    pa.field("latent_risk", pa.float64(), nullable=False),
])


def customer_ids(n: int) -> pa.Array:
    """``cust-00001``... in signup order, zero-padded so that text order is signup order."""
    width = max(5, len(str(n)))
    return pa.array([f"cust-{i:0{width}d}" for i in range(1, n + 1)], pa.string())


def events_table(rng: np.random.Generator, outcome: Outcome, ids: pa.Array) -> pa.Table:
    """The events as ``EVENT_SCHEMA``, built in chunks of ``CHUNK_ROWS`` rows."""
    day = (outcome.customer, outcome.event_type, outcome.timestamp_us, outcome.score)
    return pa.Table.from_batches(list(event_batches(rng, [day], ids)), schema=EVENT_SCHEMA)


def event_batches(rng: np.random.Generator, days, ids: pa.Array):
    """``EVENT_SCHEMA`` batches of exactly ``CHUNK_ROWS`` rows (the last may be shorter) from
    an iterable of (customer, type, timestamp, score) arrays: the same batches, ids drawn in
    the same order, however the events are split into days."""
    types = pa.array(EVENT_TYPES, pa.string())
    pending: list[tuple[np.ndarray, ...]] = []
    held = 0

    def batch(arrays) -> pa.RecordBatch:
        customer, event_type, timestamp_us, score = arrays
        return pa.record_batch([
            uuid_strings(rng, len(customer)),
            ids.take(pa.array(customer)),
            pa.array(timestamp_us, TIMESTAMP),
            types.take(pa.array(event_type)),
            pa.array(score, pa.float64()),
        ], schema=EVENT_SCHEMA)

    for part in days:
        pending.append(part)
        held += len(part[0])
        while held >= CHUNK_ROWS:
            taken, need = [], CHUNK_ROWS
            while need:
                first = pending[0]
                size = len(first[0])
                if size <= need:
                    taken.append(pending.pop(0))
                    need -= size
                else:
                    taken.append(tuple(a[:need] for a in first))
                    pending[0] = tuple(a[need:] for a in first)
                    need = 0
            yield batch([np.concatenate([p[i] for p in taken]) for i in range(4)])
            held -= CHUNK_ROWS
    if held:
        yield batch([np.concatenate([p[i] for p in pending]) for i in range(4)])


def _day_timestamps(days: np.ndarray, tod: np.ndarray | int, start_us: int,
                    before_day: np.ndarray | int) -> pa.Array:
    """Timestamps of ``days`` (day indexes) at ``tod``, null from ``before_day`` on."""
    seen = days < before_day
    values = start_us + np.where(seen, days, 0).astype(np.int64) * DAY_US + tod
    return pa.array(values, TIMESTAMP, mask=~seen)


def customers_table(pop: Population, outcome: Outcome, ids: pa.Array, start_us: int,
                    days: int) -> pa.Table:
    """The customers as ``CUSTOMER_SCHEMA``: churned_at only for churn within the period."""
    plans = pa.array([p.name for p in PLANS], pa.string())
    return pa.Table.from_arrays([
        ids,
        _day_timestamps(pop.signup_day, pop.signup_tod, start_us, NEVER),
        _day_timestamps(outcome.churn_day, pop.churn_tod, start_us, days),
        plans.take(pa.array(pop.plan)),
    ], schema=CUSTOMER_SCHEMA)


def truth_table(pop: Population, outcome: Outcome, ids: pa.Array, start_us: int,
                days: int) -> pa.Table:
    """Hidden per-customer state: how each customer was driven (never written to disk).

    ``churn_mode`` is ``sudden``, ``decay`` or ``none`` (no decision to leave within the
    period; a decay still under way at the end is ``decay`` with a null churned_at);
    ``decided_at`` the midnight of the decision to leave.
    """
    decided_day = np.where(outcome.decay_start < NEVER, outcome.decay_start, outcome.churn_day)
    decided = decided_day < days
    sudden = decided & (outcome.decay_start == NEVER)
    mode = np.where(sudden, "sudden", np.where(decided, "decay", "none"))
    alive_until = np.minimum(days, outcome.churn_day.astype(np.int64) + 1)
    return pa.Table.from_arrays([
        ids,
        pa.array(mode.tolist(), pa.string()),
        _day_timestamps(decided_day, 0, start_us, days),
        _day_timestamps(pop.monitoring_day, 0, start_us, alive_until),
        _day_timestamps(pop.integration_day, 0, start_us, alive_until),
        pa.array(outcome.dips, pa.int32()),
        pa.array(pop.latent_risk, pa.float64()),
    ], schema=TRUTH_SCHEMA)

"""Corrupt a share of simulated events the ways real pipelines see.

The dirty table holds text where a clean one holds typed values, so it can carry bad values:
``event_id, customer_id, timestamp`` (ISO-8601 text, ``Z`` suffix when valid),
``event_type`` (text) and ``feature_adoption_score`` (float64, nullable). Each corrupted row gets
one of :data:`KINDS`; the other rows are the clean events, unchanged.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KINDS = ("bad_uuid", "duplicate", "naive_timestamp", "unparseable_timestamp",
         "unknown_event_type", "score_out_of_range", "missing_score", "empty_customer_id")


def corrupt(events: pa.Table, fraction: float, rng: np.random.Generator) -> pa.Table:
    n = events.num_rows
    stamp = pc.strftime(events["timestamp"], format="%Y-%m-%dT%H:%M:%S")  # in UTC, with µs
    columns = {
        "event_id": events["event_id"].to_numpy(zero_copy_only=False).astype(object),
        "customer_id": events["customer_id"].to_numpy(zero_copy_only=False).astype(object),
        "timestamp": np.char.add(stamp.to_numpy(zero_copy_only=False).astype(str), "Z").astype(
            object),
        "event_type": events["event_type"].to_numpy(zero_copy_only=False).astype(object),
        "feature_adoption_score": events["feature_adoption_score"].to_numpy().astype(float),
    }
    rows = np.sort(rng.choice(n, size=int(round(fraction * n)), replace=False))
    kinds = rng.integers(0, len(KINDS), len(rows))
    missing = np.zeros(n, dtype=bool)
    for kind_index, kind in enumerate(KINDS):
        hit = rows[kinds == kind_index]
        if kind == "bad_uuid":
            columns["event_id"][hit] = [f"evt-{i}" for i in hit]
        elif kind == "duplicate":  # an exact copy of the previous row
            source = np.maximum(hit - 1, 0)
            for name in columns:
                columns[name][hit] = columns[name][source]
        elif kind == "naive_timestamp":
            columns["timestamp"][hit] = [s[:-1] for s in columns["timestamp"][hit]]
        elif kind == "unparseable_timestamp":
            columns["timestamp"][hit] = "yesterday-ish"
        elif kind == "unknown_event_type":
            columns["event_type"][hit] = "page_teleport"
        elif kind == "score_out_of_range":
            columns["feature_adoption_score"][hit] = rng.choice([-0.3, 1.7], len(hit))
        elif kind == "missing_score":
            missing[hit] = True
        elif kind == "empty_customer_id":
            columns["customer_id"][hit] = ""
    return pa.table({
        "event_id": pa.array(columns["event_id"], type=pa.string()),
        "customer_id": pa.array(columns["customer_id"], type=pa.string()),
        "timestamp": pa.array(columns["timestamp"], type=pa.string()),
        "event_type": pa.array(columns["event_type"], type=pa.string()),
        "feature_adoption_score": pa.array(columns["feature_adoption_score"], mask=missing),
    })

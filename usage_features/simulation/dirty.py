"""Dirty mode: the events as raw text, with a share of rows broken the ways real feeds break.

With ``dirty_fraction`` F > 0 the events table has this schema (every field nullable):

==========================  =========  ==================================================
column                      type       valid rows
==========================  =========  ==================================================
``event_id``                string     lower-case 8-4-4-4-12 UUID
``customer_id``             string     ``cust-00042``
``timestamp``               string     ISO-8601 UTC with microseconds and an offset,
                                       ``2026-01-05T09:13:22.123456+00:00`` or ``...Z``
``event_type``              string     an ``EventType`` value
``feature_adoption_score``  double     in [0, 1], never null
==========================  =========  ==================================================

``round(F * N)`` of the N clean rows (chosen at random) are each given one kind of corruption,
the kinds in equal shares (:data:`CORRUPTIONS`):

- ``bad_event_id``: event_id empty, blank, longer than 256 characters, or with a control or
  zero-width character inside;
- ``duplicate``: the row is delivered twice (an exact copy right after it, the copy counts as
  the corrupt row; so the table has N + number-of-duplicates rows);
- ``naive_timestamp``: the valid timestamp without its offset;
- ``unparseable_timestamp``: epoch seconds, ``dd/mm/YYYY HH:MM:SS.ffffff``, ``N/A`` or empty;
- ``unknown_event_type``: a versioned name (``login_v2``), ``page_view``, ``signup`` or empty
  (capitals are not a corruption: ``Login`` is ``login``);
- ``score_out_of_range``: on a percent scale (>1) or negative;
- ``missing_score``: null;
- ``empty_customer_id``: empty or blank.

Every other row is exactly the clean row as text. :attr:`Simulation.corruption` gives each
output row's kind (null for a clean row).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from usage_features.simulation.text import iso_matrix, strings_from_matrix

DIRTY_EVENT_SCHEMA = pa.schema([
    pa.field("event_id", pa.string()),
    pa.field("customer_id", pa.string()),
    pa.field("timestamp", pa.string()),
    pa.field("event_type", pa.string()),
    pa.field("feature_adoption_score", pa.float64()),
])

CORRUPTIONS = ("bad_event_id", "duplicate", "naive_timestamp", "unparseable_timestamp",
               "unknown_event_type", "score_out_of_range", "missing_score", "empty_customer_id")
_KIND = {name: i for i, name in enumerate(CORRUPTIONS)}
#: Offsets written on valid timestamps (chosen at random per row), and none for naive ones.
_SUFFIXES = (b"+00:00", b"Z", b"")


def corrupt(rng: np.random.Generator, batches: list[pa.RecordBatch], fraction: float
            ) -> tuple[pa.Table, pa.Array]:
    """Events (``EVENT_SCHEMA`` batches) as the dirty schema with ``fraction`` of rows corrupted.

    Consumes ``batches`` (emptying the list, so each clean batch can be freed once converted).
    Returns the table and, per output row, the corruption kind (null when clean).
    """
    n = sum(batch.num_rows for batch in batches)
    chosen = min(n, round(fraction * n))
    kind = np.full(n, -1, np.int8)
    rows = rng.choice(n, chosen, replace=False)
    kind[rows] = rng.permutation(np.arange(chosen) % len(CORRUPTIONS))
    tables, labels, offset = [], [], 0
    batches.reverse()
    while batches:
        batch = batches.pop()
        part = kind[offset:offset + batch.num_rows]
        offset += batch.num_rows
        table, label = _corrupt_batch(rng, batch, part)
        tables.append(table)
        labels.append(label)
    if not tables:
        return DIRTY_EVENT_SCHEMA.empty_table(), pa.array([], pa.string())
    names = pa.array(CORRUPTIONS, pa.string())
    corruption = pa.chunked_array([names.take(pa.array(lab, mask=lab < 0)) for lab in labels],
                                  pa.string()).combine_chunks()
    return pa.concat_tables(tables), corruption


def _replace(rng: np.random.Generator, column: pa.Array, mask: np.ndarray,
             variants: list) -> pa.Array:
    """``column`` with the ``mask`` rows replaced by a random choice among ``variants``.

    Each variant is a function of the original values of those rows, or a constant.
    """
    if not mask.any():
        return column
    original = column.filter(pa.array(mask))
    pick = rng.integers(0, len(variants), len(original))
    candidates = [v(original) if callable(v) else pa.array([v] * len(original), column.type)
                  for v in variants]
    chosen = candidates[0]
    for i, candidate in enumerate(candidates[1:], start=1):
        chosen = pc.if_else(pa.array(pick == i), candidate, chosen)
    return pc.replace_with_mask(column, pa.array(mask), chosen.cast(column.type))


def _bad_event_ids(rng, ids: pa.Array, mask: np.ndarray) -> pa.Array:
    return _replace(rng, ids, mask, [
        lambda v: pc.binary_repeat(v, 8),  # 288 characters
        lambda v: pc.replace_substring(v, "-", "\t", max_replacements=1),
        lambda v: pc.replace_substring(v, "-", "\u200b", max_replacements=1),
        "   ",
        "",
    ])


def _timestamps(rng, ts: pa.Array, naive: np.ndarray, unparseable: np.ndarray) -> pa.Array:
    us = ts.cast(pa.int64()).to_numpy()
    suffix = np.where(naive, 2, rng.integers(0, 2, len(ts)))
    text = strings_from_matrix(*iso_matrix(us, _SUFFIXES, suffix))
    garbage = us[unparseable]
    return _replace(rng, text, unparseable, [
        lambda v: pa.array((garbage // 1_000_000).astype(str)),
        lambda v: pc.strftime(pa.array(garbage, pa.timestamp("us")), format="%d/%m/%Y %H:%M:%S"),
        "N/A",
        "",
    ])


def _scores(rng, scores: pa.Array, out_of_range: np.ndarray, missing: np.ndarray) -> pa.Array:
    scores = _replace(rng, scores, out_of_range, [
        lambda v: pc.max_element_wise(pc.round(pc.multiply(v, 100.0), 2), 1.5),
        lambda v: pc.negate(pc.max_element_wise(v, 0.01)),
    ])
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.float64()), scores)


def _corrupt_batch(rng: np.random.Generator, batch: pa.RecordBatch, kind: np.ndarray
                   ) -> tuple[pa.Table, np.ndarray]:
    def rows(name: str) -> np.ndarray:
        return kind == _KIND[name]

    columns = [
        _bad_event_ids(rng, batch.column("event_id"), rows("bad_event_id")),
        _replace(rng, batch.column("customer_id"), rows("empty_customer_id"), ["", "  "]),
        _timestamps(rng, batch.column("timestamp"), rows("naive_timestamp"),
                    rows("unparseable_timestamp")),
        _replace(rng, batch.column("event_type"), rows("unknown_event_type"),
                 [lambda v: pc.binary_join_element_wise(v, "_v2", ""), "page_view", "signup", ""]),
        _scores(rng, batch.column("feature_adoption_score"), rows("score_out_of_range"),
                rows("missing_score")),
    ]
    table = pa.Table.from_arrays(columns, schema=DIRTY_EVENT_SCHEMA)
    duplicate = rows("duplicate")
    source = np.repeat(np.arange(batch.num_rows), 1 + duplicate)
    copy = np.zeros(len(source), bool)
    copy[1:] = source[1:] == source[:-1]
    label = np.where(copy, _KIND["duplicate"], np.where(duplicate[source], -1, kind[source]))
    return table.take(pa.array(source)), label.astype(np.int8)

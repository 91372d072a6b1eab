"""Entity rows for batch scoring (``predict --entities``), read as ingest reads events.

``customer_id`` is read as text (``00042`` stays ``00042``); ``event_timestamp`` is parsed by
ingest's own rules (:func:`usage_features.ingestion.validation.timestamp_rules`), so the same
forms are accepted (``2025-03-01T12:00:00Z``, ``2025-03-01 12:00:00+00``,
``...12:00:00.123456+02:00``, mixed in one file) and a naive or unparseable time is rejected
with its row and reason. Other columns are kept as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from usage_features.adapters.duckdb_connection import connect
from usage_features.features.retrieval import ENTITY, TIMESTAMP
from usage_features.ingestion.readers import InputError, scan_file
from usage_features.ingestion.validation import REASONS, timestamp_rules

REQUIRED = (ENTITY, TIMESTAMP)
_ROW = "source_row"


@dataclass
class EntityRows:
    """Every row of the file in order: ``rows`` (typed; ``event_timestamp`` NaT where
    invalid) and ``errors`` (row position -> "row N: reason ..." for the invalid ones)."""

    rows: pd.DataFrame
    errors: dict[int, str]

    @property
    def valid(self) -> pd.Series:
        return ~self.rows.index.isin(list(self.errors))


def read_entities(path: Path) -> EntityRows:
    """Read an entity file (Parquet, CSV or JSON Lines); raises ``InputError`` if unusable."""
    con = connect()
    relation = scan_file(con, Path(path), REQUIRED)
    missing = [c for c in REQUIRED if c not in relation.columns]
    if missing:
        raise InputError(f"{path}: missing required column(s): {', '.join(missing)}")
    if _ROW in relation.columns or "raw_timestamp" in relation.columns:
        raise InputError(f"{path}: column names {_ROW!r} and 'raw_timestamp' are reserved")
    kind = str(dict(zip(relation.columns, relation.types))[TIMESTAMP])
    table = relation.to_arrow_table()
    table = table.append_column(_ROW, pa.array(range(1, table.num_rows + 1), pa.int64()))
    con.register("entities", table)
    parsed, unparseable, naive = timestamp_rules(kind)
    extra = [c for c in relation.columns if c not in REQUIRED]
    customer = f"CAST({_ident(ENTITY)} AS VARCHAR)"
    reason = (f"CASE WHEN coalesce(trim({customer}), '') = '' THEN 'empty_customer_id' "
              f"WHEN coalesce({unparseable}, false) THEN 'unparseable_timestamp' "
              f"WHEN coalesce({naive}, false) THEN 'naive_timestamp' END")
    frame = con.sql(
        f"""SELECT {_ROW}, {customer} AS {_ident(ENTITY)},
                   CASE WHEN reason IS NULL THEN {parsed} END AS {_ident(TIMESTAMP)},
                   {''.join(f"{_ident(c)}, " for c in extra)}
                   reason, CAST(raw_timestamp AS VARCHAR) AS raw_text
            FROM (SELECT *, {reason} AS reason
                  FROM (SELECT *, {_ident(TIMESTAMP)} AS raw_timestamp FROM entities))
            ORDER BY {_ROW}""").df()
    errors = {}
    for i, (row, code, raw) in enumerate(zip(frame[_ROW], frame.reason, frame.raw_text)):
        if code is not None and not pd.isna(code):
            meaning = ("customer_id is missing or empty" if code == "empty_customer_id"
                       else REASONS[code])
            errors[i] = f"row {row}: {code}: {meaning} (got {raw!r})"
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    return EntityRows(frame[[ENTITY, TIMESTAMP, *extra]], errors)


def _ident(name: str) -> str:
    """A column name as a DuckDB identifier (quoted, quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'

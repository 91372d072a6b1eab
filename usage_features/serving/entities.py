"""Entity rows for batch scoring (``predict --entities``), read as ingest reads events.

``customer_id`` is read as text (``00042`` stays ``00042``); ``event_timestamp`` is parsed by
ingest's own reader and rules (:func:`usage_features.ingestion.validation.timestamp_rules`), so
the same forms are accepted (``2025-03-01T12:00:00Z``, ``2025-03-01 12:00:00+00``,
``...12:00:00.123456+02:00``, mixed in one file) and a naive or unparseable time is rejected
with its row and reason. Other columns are kept as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from usage_features.adapters.duckdb_connection import connect
from usage_features.adapters.stored_files import damage_reason, is_library_error
from usage_features.features.retrieval import ENTITY, TIMESTAMP
from usage_features.ingestion import text_formats
from usage_features.ingestion.readers import (
    InputError,
    LinkDirectory,
    count_rows_hint,
    is_parquet,
    open_input,
)
from usage_features.ingestion.validation import REASONS, stripped, timestamp_rules

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
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    extra = tuple(n for n in _column_names(path) if n and n not in REQUIRED)
    if _ROW in extra:
        raise InputError(f"{path}: the column name {_ROW!r} is reserved")
    with connect() as con:
        with LinkDirectory() as links:  # ingest's reader: text as written, names read literally
            source = open_input(con, path, links, REQUIRED, extra)
            try:
                batches = list(source.batches(65_536))
            except Exception as exc:
                if not is_library_error(exc):
                    raise
                # a damaged file: one line saying so, never the library's traceback
                raise InputError(f"{path}: cannot be read (damaged, or not what its name "
                                 f"says): {damage_reason(exc)}") from None
        if not batches or not sum(b.num_rows for b in batches):
            raise InputError(f"{path}: no rows")
        con.register("entities", pa.Table.from_batches(batches))
        parsed, unparseable, naive = timestamp_rules(f"raw_{TIMESTAMP}",
                                                     source.types[TIMESTAMP])
        # the canonical form ingest stores: " cust-1 " is the customer cust-1
        customer = stripped(f"CAST(raw_{ENTITY} AS VARCHAR)")
        reason = (f"CASE WHEN malformed THEN 'malformed_row' "
                  f"WHEN coalesce(trim({customer}), '') = '' THEN 'empty_customer_id' "
                  f"WHEN coalesce({unparseable}, false) THEN 'unparseable_timestamp' "
                  f"WHEN coalesce({naive}, false) THEN 'naive_timestamp' END")
        frame = con.sql(
            f"""SELECT {_ROW}, {customer} AS {_ident(ENTITY)},
                       CASE WHEN reason IS NULL THEN {parsed} END AS {_ident(TIMESTAMP)},
                       {''.join(f"{_ident('raw_' + c)} AS {_ident(c)}, " for c in extra)}
                       reason, CAST(raw_{TIMESTAMP} AS VARCHAR) AS raw_text
                FROM (SELECT *, {reason} AS reason FROM entities)
                ORDER BY {_ROW}""").df()
    errors = {}
    for i, (row, code, raw) in enumerate(zip(frame[_ROW], frame.reason, frame.raw_text)):
        if code is not None and not pd.isna(code):
            meaning = ("customer_id is missing or empty" if code == "empty_customer_id"
                       else REASONS[code])
            errors[i] = f"row {row}: {code}: {meaning} (got {raw!r})"
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    return EntityRows(frame[[ENTITY, TIMESTAMP, *extra]], errors)


def _column_names(path: Path) -> list[str]:
    """The file's column names, as ingest's reader sees them."""
    try:
        if is_parquet(path):
            count_rows_hint(path)  # a foreign or truncated file: a clear error
            return pq.read_schema(path).names
        if path.name.lower().endswith((".csv", ".csv.gz", ".tsv")):
            return text_formats.csv_header(path)
        return text_formats.jsonl_keys(path)
    except text_formats.MalformedFileError as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None


def _ident(name: str) -> str:
    """A column name as a DuckDB identifier (quoted, quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'

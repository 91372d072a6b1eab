"""Stage inputs for ingest: every row of every input, validated column-wise (SQL) into the
table ``staged`` with its raw text, its typed values and the reason it is rejected, if any.

A rejected row keeps its raw text only; a valid row keeps its typed values only, in compact
types (the id a 16-byte ``UUID``, the event type an ``ENUM``): at 10^8 events the table is
some 9 GB instead of 13, and DuckDB spills less of it. Read them back as text with
:data:`STAGED_EVENT`."""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pyarrow as pa

from usage_features.adapters.duckdb_connection import run, sql_string
from usage_features.domain.value_objects import EventType
from usage_features.ingestion.readers import Input, InputError, count_rows_hint
from usage_features.ingestion.validation import validated_sql
from usage_features.schema import EVENT_COLUMNS

#: Rows validated at a time from a text input.
CHUNK_ROWS = 1_000_000
#: The columns holding each row's values as read.
RAW = [f"raw_{c}" for c in EVENT_COLUMNS]
#: A staged valid row's event columns, as the event log stores them (text id and type).
STAGED_EVENT = ("CAST(event_id AS VARCHAR) AS event_id, customer_id, timestamp, "
                "CAST(event_type AS VARCHAR) AS event_type, feature_adoption_score")


def create_staging_table(con: duckdb.DuckDBPyConnection) -> None:
    raw = ", ".join(f"{c} VARCHAR" for c in RAW)
    types = ", ".join(sql_string(t.value) for t in EventType)
    run(con, f"CREATE TYPE staged_event_type AS ENUM ({types})")
    run(con, f"""CREATE TABLE staged (
            file_index INTEGER, source_row BIGINT, {raw},
            event_id UUID, customer_id VARCHAR, timestamp TIMESTAMPTZ,
            event_type staged_event_type, feature_adoption_score DOUBLE, reason VARCHAR)""")


def _insert(source: str, types: dict[str, str], now, limits) -> str:
    """INSERT INTO ``staged`` the validated rows of ``source``, typed values for valid rows
    only (a rejected row's invalid id or type has no compact form; its raw text is kept)."""
    valid = "CASE WHEN reason IS NULL THEN CAST({0} AS {1}) END AS {0}"
    return (f"INSERT INTO staged SELECT * REPLACE ({valid.format('event_id', 'UUID')}, "
            f"{valid.format('event_type', 'staged_event_type')}) "
            f"FROM ({validated_sql(source, types, now, limits)})")


def stage_parquet(con, index: int, source: Input, now, limits, on_rows) -> None:
    """Validate a Parquet file into ``staged`` in one statement, straight from the file (row
    numbers from the reader); progress is polled from DuckDB while it runs."""
    view = f"input_{index}"
    source.relation.select(f"{index} AS file_index, *").create_view(view)
    insert = _insert(view, source.types, now, limits)
    total = count_rows_hint(source.path) or 0
    failure: list[BaseException] = []

    def work() -> None:
        try:
            run(con, insert)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the calling thread
            failure.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    reported = 0
    while worker.is_alive():
        worker.join(0.2)
        done = int(total * max(con.query_progress(), 0) / 100)
        if on_rows and done > reported:
            on_rows(done - reported)
            reported = done
    if failure:
        if isinstance(failure[0], duckdb.Error):
            raise InputError(f"{source.path}: cannot be read as Parquet: {failure[0]}")
        raise failure[0]
    if on_rows and total > reported:
        on_rows(total - reported)


def stage(con, index, source: Input, now, limits, on_rows) -> None:
    """Validate ``source`` chunk by chunk into ``staged`` (a million rows at a time)."""
    insert = _insert("chunk", source.types, now, limits)
    for batch in source.batches(CHUNK_ROWS):
        n = batch.num_rows
        chunk = pa.Table.from_batches([batch])
        chunk = chunk.add_column(0, "file_index", pa.array(np.full(n, index, dtype=np.int32)))
        con.register("chunk", chunk)
        run(con, insert)
        con.unregister("chunk")
        if on_rows:
            on_rows(n)

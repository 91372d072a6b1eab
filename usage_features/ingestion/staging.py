"""Stage inputs for ingest: every row of every input, validated column-wise (SQL) into the
table ``staged`` with its raw text, its typed values and the reason it is rejected, if any.

A rejected row keeps its raw text only; a valid row keeps its typed values only. Ids are any
text (a UUID, a warehouse's integer, or derived from the row's content when the input has no
id column; see :func:`number_identical_rows`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from usage_features.adapters.duckdb_connection import run
from usage_features.domain.vocabulary import EventVocabulary
from usage_features.ingestion.readers import Input, InputError, count_rows_hint
from usage_features.ingestion.settings import Limits
from usage_features.ingestion.validation import derived_id_sql, validated_sql
from usage_features.schema import EVENT_COLUMNS

#: Rows validated at a time from a text input.
CHUNK_ROWS = 1_000_000
#: The columns holding each row's values as read.
RAW = [f"raw_{c}" for c in EVENT_COLUMNS]
#: A staged valid row's event columns, as the event log stores them.
STAGED_EVENT = "event_id, customer_id, timestamp, event_type, feature_adoption_score"


@dataclass(frozen=True)
class Rules:
    """What a valid row is: the time of ingestion, the repo's limits and event vocabulary, and
    the input columns that join customer, time and type in the id of an event without one."""

    now: datetime
    limits: Limits
    vocabulary: EventVocabulary
    key_columns: tuple[str, ...] = ()

    def key_targets(self) -> tuple[str, ...]:
        """The names the key columns are read under (``raw_<name>`` in a staged input)."""
        return tuple(f"key_{i}" for i in range(len(self.key_columns)))


def create_staging_table(con: duckdb.DuckDBPyConnection) -> None:
    raw = ", ".join(f"{c} VARCHAR" for c in RAW)
    run(con, f"""CREATE TABLE staged (
            file_index INTEGER, source_row BIGINT, {raw},
            event_id VARCHAR, customer_id VARCHAR, timestamp TIMESTAMPTZ,
            event_type VARCHAR, feature_adoption_score DOUBLE, reason VARCHAR)""")


def _insert(source: str, input_: Input, rules: Rules) -> str:
    """INSERT INTO ``staged`` the validated rows of ``source``; an input without an event id
    column gets ids from its rows' content."""
    derive = "event_id" in input_.absent
    keys = tuple(f"raw_{k}" for k in rules.key_targets()) if derive else ()
    validated = validated_sql(source, input_.types, rules.now, rules.limits, rules.vocabulary,
                              derive, keys)
    return f"INSERT INTO staged SELECT * FROM ({validated})"


def number_identical_rows(con: duckdb.DuckDBPyConnection, derived_files: list[int]) -> None:
    """Give the 2nd, 3rd... of identical rows of one input (the same content id) ids of their
    own, from the content id and the occurrence number: five identical events in one file are
    five events, and a later file repeating them adds nothing. Only ids that repeat are
    touched (found by a sort of 64-bit hashes, as :func:`ingest._classify` does)."""
    if not derived_files:
        return
    files = ", ".join(str(int(i)) for i in derived_files)
    valid = f"reason IS NULL AND file_index IN ({files})"
    run(con, f"""CREATE TEMP TABLE identical AS
        WITH hashes AS (SELECT hash(file_index, event_id) AS h FROM staged WHERE {valid}),
        candidates AS (SELECT h FROM (SELECT h, lead(h) OVER (ORDER BY h) AS next FROM hashes)
                       WHERE h = next)
        SELECT file_index, source_row, {derived_id_sql(["event_id", "CAST(occurrence AS VARCHAR)"])}
                  AS numbered
        FROM (SELECT file_index, source_row, event_id, row_number() OVER (
                  PARTITION BY file_index, event_id ORDER BY source_row) AS occurrence
              FROM staged
              WHERE {valid} AND hash(file_index, event_id) IN (SELECT h FROM candidates))
        WHERE occurrence > 1""")
    run(con, """UPDATE staged SET event_id = i.numbered FROM identical i
                WHERE staged.file_index = i.file_index AND staged.source_row = i.source_row""")
    run(con, "DROP TABLE identical")


def stage_parquet(con, index: int, source: Input, rules: Rules, on_rows) -> None:
    """Validate a Parquet file into ``staged`` in one statement, straight from the file (row
    numbers from the reader); progress is polled from DuckDB while it runs."""
    view = f"input_{index}"
    source.relation.select(f"{index} AS file_index, *").create_view(view)
    insert = _insert(view, source, rules)
    total = count_rows_hint(source.path) or 0
    failure: list[BaseException] = []

    def work() -> None:
        try:
            run(con, insert)
        except BaseException as exc:  # re-raised below, in the calling thread
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


def stage(con, index, source: Input, rules: Rules, on_rows) -> None:
    """Validate ``source`` chunk by chunk into ``staged`` (a million rows at a time)."""
    insert = _insert("chunk", source, rules)
    for batch in source.batches(CHUNK_ROWS):
        n = batch.num_rows
        chunk = pa.Table.from_batches([batch])
        chunk = chunk.add_column(0, "file_index", pa.array(np.full(n, index, dtype=np.int32)))
        con.register("chunk", chunk)
        run(con, insert)
        con.unregister("chunk")
        if on_rows:
            on_rows(n)

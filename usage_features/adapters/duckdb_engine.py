"""The build's default SQL engine: DuckDB in process over the local Parquet files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from usage_features.adapters.duckdb_connection import (
    connect,
    copy_atomically,
    parquet_list,
    run,
    sql_string,
)
from usage_features.adapters.sql_engine import Engine

#: The feature tables' codec. Retrieval decodes every feature column of the rows it reads, and
#: LZ4 decodes in about two thirds of ZSTD's CPU time (measured on the 10^7 tables: 0.49 s
#: against 0.76 s for a full read), for files about 30 % larger.
FEATURE_TABLE_COMPRESSION = "lz4"


class DuckDBEngine(Engine):
    """In-process DuckDB over the local Parquet files.

    Its working memory is bounded (``$USAGE_FEATURES_MEMORY_LIMIT``, see
    :func:`~usage_features.adapters.duckdb_connection.memory_limit_bytes`); beyond it the
    aggregation, window and sort steps spill to ``spill_to`` (the build passes the repo's
    ``data/.spill``).
    """

    dialect = "duckdb"
    #: About 1 GiB of window state per pass; the same pass size at every scale, so the build's
    #: time per event stays the same from 10^7 events (one pass) to 3 x 10^8.
    rows_per_pass = 1_000_000
    #: A day's lookback rows in fewer, larger passes, as the daily memory limit still bounds
    #: them: at 10^8 events a day's 3.0 M rows took 14.0 s in one pass, 16.7 s in three, the
    #: build's peak 1.5 GiB either way.
    lookback_rows_per_pass = 4_000_000
    #: About 5 M events (Parquet at ~40 bytes an event) aggregated into daily rows per pass.
    event_bytes_per_pass = 200_000_000

    def __init__(self, spill_to: Path | None = None, memory_limit: int | None = None) -> None:
        self.con = connect(spill_to=spill_to, memory_limit=memory_limit)
        # rows are ordered explicitly where order matters (every write has an ORDER BY)
        run(self.con, "SET preserve_insertion_order = false")

    def files(self, paths: Sequence[Path]) -> str:
        return f"read_parquet({parquet_list(paths)}, hive_partitioning = false)"

    def create(self, name: str, query: str) -> None:
        run(self.con, f"CREATE OR REPLACE TABLE {name} AS {query}")

    def append(self, name: str, query: str) -> None:
        run(self.con, f"INSERT INTO {name} {query}")

    def rows(self, query: str) -> list[tuple]:
        return self.con.execute(query).fetchall()

    def write(self, query: str, target: Path, order_by: str) -> None:
        copy_atomically(self.con, f"SELECT * FROM ({query}) ORDER BY {order_by}", target,
                        compression=FEATURE_TABLE_COMPRESSION)

    def stage(self, query: str, key: str, directory: Path, part: int) -> None:
        """Into a table of the connection, not files: no Parquet encoded and decoded again
        (measured at 10^8 events: 0.7 s a pass and a second of the month files' writes); beyond
        the memory limit DuckDB spills it like any other."""
        table = f"staged_{key}"  # the build's own names
        if part == 0:
            self.create(table, query)
        else:
            self.append(table, query)

    def staged(self, key: str, directory: Path) -> dict[str, str]:
        table = f"staged_{key}"
        values = [v for (v,) in self.rows(f"SELECT DISTINCT {key} FROM {table} ORDER BY 1")]
        return {v: f"(SELECT * EXCLUDE ({key}) FROM {table} WHERE {key} = {sql_string(v)})"
                for v in values}

    def close(self) -> None:
        self.con.close()

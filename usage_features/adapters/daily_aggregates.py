"""Reads for the web pages: the build's per-(customer, day) aggregates
(``data/features/daily_aggregates.parquet``) and one customer's events on given days.

The daily table has ``customer_id``, ``day`` (days since the epoch, UTC) and one column per
daily aggregate of the feature spec (its names are the spec's, passed in: an adapter names
none). It is sorted by customer and day, so one customer's rows are read from the row groups
whose statistics hold it, not from the whole file. A build replaces the file atomically: a read
sees the old table or the new one.

Each function takes a DuckDB connection (a cursor of one long-lived connection: opening a
connection costs 10 to 20 ms, more than the reads themselves).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from usage_features.adapters.duckdb_connection import parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.schema import EVENT_COLUMNS

DAY_SECONDS = 86_400
EPOCH = date(1970, 1, 1)


def sql_identifier(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def day_number(day: date) -> int:
    """The table's ``day`` of a date."""
    return (day - EPOCH).days


def latest_per_customer(con: duckdb.DuckDBPyConnection, daily: Path, column: str,
                        before_day: int) -> pd.DataFrame:
    """``customer_id`` and the largest ``column`` of its rows on days before ``before_day``
    (an empty frame without the table)."""
    if not Path(daily).exists():
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), column: pd.Series(
            dtype="datetime64[us, UTC]")})
    name = sql_identifier(column)
    return con.execute(
        f"SELECT customer_id, max({name}) AS {name} FROM read_parquet({parquet_list([daily])}) "
        "WHERE day < $day GROUP BY customer_id", {"day": before_day}).df()


def customer_rows(con: duckdb.DuckDBPyConnection, daily: Path, customer_id: str,
                  columns: Sequence[str], first_day: int, last_day: int) -> pd.DataFrame:
    """``day`` and ``columns`` of one customer's rows on days ``first_day`` to ``last_day``
    (inclusive), by day."""
    if not Path(daily).exists():
        return pd.DataFrame({"day": pd.Series(dtype="int32"),
                             **{c: pd.Series(dtype="int64") for c in columns}})
    selected = "".join(f", {sql_identifier(c)}" for c in columns)
    return con.execute(
        f"SELECT day{selected} FROM read_parquet({parquet_list([daily])}) "
        "WHERE customer_id = $customer AND day BETWEEN $first AND $last ORDER BY day",
        {"customer": customer_id, "first": first_day, "last": last_day}).df()


def latest_events(con: duckdb.DuckDBPyConnection, log: EventLog, customer_id: str, limit: int,
                  days: Iterable[date] | None = None) -> list[tuple]:
    """The customer's latest ``limit`` events (:data:`EVENT_COLUMNS` tuples, newest first),
    read from the event log's partitions of ``days`` only (None: every partition)."""
    wanted = None if days is None else {f"event_date={d.isoformat()}" for d in days}
    with log.snapshot() as files:  # whole batches only
        chosen = [f for f in files if wanted is None or f.parent.name in wanted]
        if not chosen:
            return []
        return con.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM read_parquet({parquet_list(chosen)}, "
            "hive_partitioning = false) WHERE customer_id = $customer "
            "ORDER BY timestamp DESC, event_id DESC LIMIT $limit",
            {"customer": customer_id, "limit": limit}).fetchall()


def table_days(con: duckdb.DuckDBPyConnection, daily: Path) -> int | None:
    """The table's latest ``day`` (None: no table, or empty)."""
    if not Path(daily).exists():
        return None
    return con.execute(f"SELECT max(day) FROM read_parquet({parquet_list([daily])})"
                       ).fetchall()[0][0]


__all__ = ["DAY_SECONDS", "EPOCH", "customer_rows", "day_number", "latest_events",
           "latest_per_customer", "table_days"]

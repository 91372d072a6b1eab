"""Reads for the web pages: the build's per-(customer, day) aggregates
(``data/features/daily_aggregates/``, a file per month) and one customer's events on given days.

The daily table has ``customer_id``, ``day`` (days since the epoch, UTC) and one column per
daily aggregate of the feature spec (its names are the spec's, passed in: an adapter names
none). Each month's file is sorted by customer and day, so one customer's rows are read from the
row groups whose statistics hold them, not from the whole file; a read of the days of some
months reads only those months' files. A build replaces a month's file atomically: a read sees
its old rows or its new ones.

Each function takes a DuckDB connection (a cursor of one long-lived connection: opening a
connection costs 10 to 20 ms, more than the reads themselves).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from usage_features.adapters.duckdb_connection import parquet_list
from usage_features.config import RepoPaths
from usage_features.schema import EVENT_COLUMNS

DAY_SECONDS = 86_400
EPOCH = date(1970, 1, 1)


def sql_identifier(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def day_number(day: date) -> int:
    """The table's ``day`` of a date."""
    return (day - EPOCH).days


def month_files(daily: Path, first_day: int | None = None,
                last_day: int | None = None) -> list[Path]:
    """The daily table's files (``daily``: its directory), those of the months of days
    ``first_day`` to ``last_day`` when given."""
    def month(day: int) -> str:
        return (EPOCH + timedelta(days=day)).strftime("%Y-%m")

    low = month(first_day) if first_day is not None else ""
    high = month(last_day) if last_day is not None else "~"
    return [f for f in sorted(Path(daily).glob("*.parquet")) if low <= f.stem <= high]


def latest_per_customer(con: duckdb.DuckDBPyConnection, daily: Path, column: str,
                        before_day: int) -> pd.DataFrame:
    """``customer_id`` and the largest ``column`` of its rows on days before ``before_day``
    (an empty frame without the table)."""
    files = month_files(daily, last_day=before_day - 1)
    if not files:
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), column: pd.Series(
            dtype="datetime64[us, UTC]")})
    name = sql_identifier(column)
    return con.execute(
        f"SELECT customer_id, max({name}) AS {name} FROM read_parquet({parquet_list(files)}) "
        "WHERE day < $day GROUP BY customer_id", {"day": before_day}).df()


def customer_rows(con: duckdb.DuckDBPyConnection, daily: Path, customer_id: str,
                  columns: Sequence[str], first_day: int, last_day: int) -> pd.DataFrame:
    """``day`` and ``columns`` of one customer's rows on days ``first_day`` to ``last_day``
    (inclusive), by day."""
    files = month_files(daily, first_day, last_day)
    if not files:
        return pd.DataFrame({"day": pd.Series(dtype="int32"),
                             **{c: pd.Series(dtype="int64") for c in columns}})
    selected = "".join(f", {sql_identifier(c)}" for c in columns)
    return con.execute(
        f"SELECT day{selected} FROM read_parquet({parquet_list(files)}) "
        "WHERE customer_id = $customer AND day BETWEEN $first AND $last ORDER BY day",
        {"customer": customer_id, "first": first_day, "last": last_day}).df()


@contextmanager
def committed_files(paths: RepoPaths, days: Iterable[date]) -> Iterator[list[Path]]:
    """The event log's committed files in the partitions of ``days``, none changing until the
    block ends: what :meth:`EventLog.snapshot` gives for the whole log (the commit lock held
    shared, the files an unfinished commit's journal names left out), listing only those
    partitions' directories (listing every partition costs milliseconds of Python per view).
    """
    try:
        handle = open(paths.commit_lock)  # noqa: SIM115 - closed below; read-only, as a reader
    except OSError:  # no commit ever: nothing to wait for
        handle = None
    try:
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_SH)
        root = paths.events
        uncommitted = set()
        for journal in (root / "_staging").glob("*.journal"):
            uncommitted |= {root / name for name in json.loads(journal.read_text())}
        found = []
        for day in sorted(set(days)):
            partition = root / f"event_date={day.isoformat()}"
            try:
                names = sorted(os.listdir(partition))
            except FileNotFoundError:
                continue
            found += [partition / n for n in names if n.endswith(".parquet")
                      and partition / n not in uncommitted]
        yield found
    finally:
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def latest_events(con: duckdb.DuckDBPyConnection, paths: RepoPaths, customer_id: str,
                  limit: int, days: Iterable[date]) -> list[tuple]:
    """The customer's latest ``limit`` events (:data:`EVENT_COLUMNS` tuples, newest first),
    read from the event log's partitions of ``days`` only."""
    with committed_files(paths, days) as chosen:  # whole batches only
        if not chosen:
            return []
        return con.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM read_parquet({parquet_list(chosen)}, "
            "hive_partitioning = false) WHERE customer_id = $customer "
            "ORDER BY timestamp DESC, event_id DESC LIMIT $limit",
            {"customer": customer_id, "limit": limit}).fetchall()


def table_days(con: duckdb.DuckDBPyConnection, daily: Path) -> int | None:
    """The table's latest ``day`` (None: no table, or empty)."""
    files = month_files(daily)
    if not files:
        return None
    return con.execute(f"SELECT max(day) FROM read_parquet({parquet_list(files[-1:])})"
                       ).fetchall()[0][0]


__all__ = ["DAY_SECONDS", "EPOCH", "committed_files", "customer_rows", "day_number",
           "latest_events", "latest_per_customer", "table_days"]

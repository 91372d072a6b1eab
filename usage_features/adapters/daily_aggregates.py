"""Reads of the build's per-(customer, day) aggregates (``data/features/daily_aggregates.parquet``)
for the web pages: each customer's latest event before a day, one customer's daily rows.

The table has ``customer_id``, ``day`` (days since the epoch, UTC) and one column per daily
aggregate of the feature spec (its names are the spec's, passed in: an adapter names none).
It is sorted by customer and day, so one customer's rows are read from the row groups whose
statistics hold it, not from the whole file. A build replaces the file atomically: a read sees
the old table or the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from usage_features.adapters.duckdb_connection import connect, parquet_list

DAY_SECONDS = 86_400


def sql_identifier(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def table_columns(daily: Path) -> list[str]:
    """The table's columns (none when it does not exist yet)."""
    if not Path(daily).exists():
        return []
    with connect() as con:
        return [row[0] for row in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({parquet_list([daily])})").fetchall()]


def latest_per_customer(daily: Path, column: str, before_day: int) -> pd.DataFrame:
    """``customer_id`` and the largest ``column`` of its rows on days before ``before_day``
    (an empty frame without the table)."""
    if not Path(daily).exists():
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), column: pd.Series(
            dtype="datetime64[us, UTC]")})
    name = sql_identifier(column)
    with connect() as con:
        return con.execute(
            f"SELECT customer_id, max({name}) AS {name} FROM read_parquet("
            f"{parquet_list([daily])}) WHERE day < $day GROUP BY customer_id",
            {"day": before_day}).df()


def customer_rows(daily: Path, customer_id: str, columns: Sequence[str], first_day: int,
                  last_day: int) -> pd.DataFrame:
    """``day`` and ``columns`` of one customer's rows on days ``first_day`` to ``last_day``
    (inclusive), by day."""
    if not Path(daily).exists() or not columns:
        return pd.DataFrame({"day": pd.Series(dtype="int32")})
    selected = ", ".join(sql_identifier(c) for c in columns)
    with connect() as con:
        return con.execute(
            f"SELECT day, {selected} FROM read_parquet({parquet_list([daily])}) "
            "WHERE customer_id = $customer AND day BETWEEN $first AND $last ORDER BY day",
            {"customer": customer_id, "first": first_day, "last": last_day}).df()


__all__ = ["DAY_SECONDS", "customer_rows", "latest_per_customer", "table_columns"]

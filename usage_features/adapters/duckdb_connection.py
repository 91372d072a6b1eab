"""DuckDB connections configured the one way the project needs them."""

from __future__ import annotations

import duckdb


def connect(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose session time zone is UTC.

    Dates derived from timestamps (partitions, day truncation) are UTC dates everywhere.
    """
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    return con

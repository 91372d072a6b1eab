"""DuckDB connections configured the one way the project needs them."""

from __future__ import annotations

import duckdb


def connect(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose session time zone is UTC.

    Dates derived from timestamps (partitions, day truncation) are UTC dates everywhere.
    """
    con = duckdb.connect(database)
    run(con, "SET TimeZone = 'UTC'")
    return con


def run(con: duckdb.DuckDBPyConnection, statement: str, params=None) -> None:
    """Execute a statement to completion (DuckDB 2 keeps a result open until it is fetched)."""
    con.execute(statement, params).fetchall()


def copy_atomically(con: duckdb.DuckDBPyConnection, query: str, target) -> None:
    """Write ``query`` to the Parquet file ``target`` via a temporary file and a rename."""
    import os
    from pathlib import Path

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    run(con, f"COPY ({query}) TO {sql_string(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    os.replace(tmp, target)


def sql_string(value) -> str:
    """``value`` (a path, a name, any text) as one SQL string literal: the project's only quoting.

    Use it wherever a value cannot be a bound parameter (``COPY ... TO``, ``SET``); anywhere
    else, pass the value as a parameter.
    """
    return "'" + str(value).replace("'", "''") + "'"


def parquet_list(paths) -> str:
    """A SQL list literal of file paths, for ``read_parquet([...])``."""
    return "[" + ", ".join(sql_string(p) for p in paths) + "]"

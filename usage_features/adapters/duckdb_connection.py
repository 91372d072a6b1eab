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


#: DuckDB expands these in any path it reads (``read_parquet``, ``read_csv``...): a file or a
#: directory named ``ev*.csv`` or ``repo[1]`` would be read as a pattern.
_GLOB_CHARACTERS = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})


def literal_path(path) -> str:
    """``path`` as a pattern that matches exactly that path when DuckDB reads it.

    Each glob character is put in a one-character class (``*`` -> ``[*]``). DuckDB reads a
    backslash in a pattern as a separator, so a path with both cannot be matched: refused.
    Quote the result with :func:`sql_string` or pass it as a parameter.
    """
    text = str(path)
    escaped = text.translate(_GLOB_CHARACTERS)
    if escaped != text and "\\" in text:
        raise ValueError(f"cannot read {text!r}: DuckDB cannot match a path holding both a "
                         "backslash and one of * ? [ ; rename it")
    return escaped


def parquet_list(paths) -> str:
    """A SQL list literal of file paths, for ``read_parquet([...])``: each read as named."""
    return "[" + ", ".join(sql_string(literal_path(p)) for p in paths) + "]"

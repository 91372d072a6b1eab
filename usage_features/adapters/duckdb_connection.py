"""DuckDB connections configured the one way the project needs them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from usage_features.adapters.files import atomic_path
from usage_features.domain.quoting import sql_string

#: The environment variable that sets DuckDB's working memory (``memory_limit``) for every
#: connection the project opens: ``4GiB``, ``2.5GB``, ``800MiB``... Beyond it, DuckDB spills
#: intermediate results to disk.
MEMORY_LIMIT_VARIABLE = "USAGE_FEATURES_MEMORY_LIMIT"
#: Without the variable: this share of the machine's memory (or of the cgroup's limit).
DEFAULT_MEMORY_SHARE = 1 / 6
#: Without the variable, the daily job's build works in at most this much (its peak is then
#: well under 2 GiB at 10^8 events: :func:`daily_memory_limit_bytes`).
DAILY_MEMORY_LIMIT = 1200 * 2**20
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_memory_size(text: str) -> int:
    """``text`` (``4GiB``, ``2.5 GB``, ``800MiB``...) in bytes; a clear error otherwise."""
    match = _SIZE.match(str(text))
    unit = match and _UNITS.get(match.group(2).lower())
    if not unit:
        raise ValueError(f"{MEMORY_LIMIT_VARIABLE}={text!r}: not a memory size; write a number "
                         "and a unit, e.g. 4GiB, 2.5GB or 800MiB")
    size = int(float(match.group(1)) * unit)
    if size < 64 * 2**20:
        raise ValueError(f"{MEMORY_LIMIT_VARIABLE}={text!r}: below 64MiB, DuckDB cannot work")
    return size


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = Path("/sys/fs/cgroup/memory.max")
    try:
        text = limit.read_text().strip()
    except OSError:
        return total
    return min(total, int(text)) if text.isdigit() else total


def memory_limit_bytes() -> int:
    """DuckDB's ``memory_limit`` for the project's connections: ``$USAGE_FEATURES_MEMORY_LIMIT``
    or :data:`DEFAULT_MEMORY_SHARE` of :func:`machine_memory` (at least 1 GiB)."""
    setting = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    if setting:
        return parse_memory_size(setting)
    return max(2**30, int(machine_memory() * DEFAULT_MEMORY_SHARE))


def daily_memory_limit_bytes() -> int:
    """DuckDB's ``memory_limit`` for the daily job's build (``refresh``):
    ``$USAGE_FEATURES_MEMORY_LIMIT`` when set, else the smaller of :data:`DAILY_MEMORY_LIMIT`
    and :func:`memory_limit_bytes`. A day's build works on passes of bounded size; with a
    larger limit DuckDB keeps more in memory, not finishing sooner (measured at 10^8 events:
    the same 50 s build with 1.2 and 4 GiB, the refresh's peak 1.65 and 3.24 GiB)."""
    if os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip():
        return memory_limit_bytes()
    return min(DAILY_MEMORY_LIMIT, memory_limit_bytes())


def connect(database: str = ":memory:", spill_to=None, memory_limit: int | None = None
            ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose session time zone is UTC and whose working memory is bounded
    by ``memory_limit`` bytes (default :func:`memory_limit_bytes`); beyond it, DuckDB spills to
    ``spill_to`` (a directory; by default DuckDB's own, ``.tmp`` in the working directory).

    Dates derived from timestamps (partitions, day truncation) are UTC dates everywhere.
    """
    con = duckdb.connect(database)
    try:
        run(con, "SET TimeZone = 'UTC'")
        limit = memory_limit or memory_limit_bytes()
        run(con, f"SET memory_limit = '{limit // 2**20}MiB'")
        if spill_to is not None:
            Path(spill_to).mkdir(parents=True, exist_ok=True)
            run(con, f"SET temp_directory = {sql_string(spill_to)}")
    except BaseException:  # a bad memory setting, an unwritable spill directory
        con.close()
        raise
    return con


def run(con: duckdb.DuckDBPyConnection, statement: str, params=None) -> None:
    """Execute a statement to completion (DuckDB 2 keeps a result open until it is fetched)."""
    con.execute(statement, params).fetchall()


def copy_atomically(con: duckdb.DuckDBPyConnection, query: str, target,
                    compression: str = "zstd") -> None:
    """Write ``query`` to the Parquet file ``target`` via a temporary file and a rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        run(con, f"COPY ({query}) TO {sql_string(tmp)} "
                 f"(FORMAT parquet, COMPRESSION {compression})")


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

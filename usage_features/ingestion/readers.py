"""Open Parquet, CSV and JSON Lines inputs as relations of the five event columns, as text.

Everything is read as text (Parquet values are cast to text) so that a bad value is kept as it
was written and validation sees the same thing whatever the format.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import duckdb

from usage_features.schema import EVENT_COLUMNS

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv")
_JSONL = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")


class InputError(ValueError):
    """An input file cannot be ingested at all (nothing is written)."""


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in _PARQUET + _CSV + _JSONL:
        if name.endswith(suffix):
            return suffix
    raise InputError(
        f"{path}: unsupported file type; expected Parquet ({', '.join(_PARQUET)}), "
        f"CSV ({', '.join(_CSV)}) or JSON Lines ({', '.join(_JSONL)})"
    )


def scan_file(con: duckdb.DuckDBPyConnection, path: Path,
              columns: tuple[str, ...] = EVENT_COLUMNS) -> duckdb.DuckDBPyRelation:
    """All columns of a Parquet, CSV or JSON Lines file (CSV and JSON ``columns`` as text)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = _suffix(path)
    try:
        return _scan(con, path, suffix, columns)
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from exc


def _scan(con, path: Path, suffix: str, expected: tuple[str, ...]) -> duckdb.DuckDBPyRelation:
    quoted = str(path).replace("'", "''")
    if suffix in _PARQUET:
        return con.sql(f"SELECT * FROM read_parquet('{quoted}')")
    if suffix in _CSV:
        return con.sql(f"SELECT * FROM read_csv('{quoted}', all_varchar = true, header = true)")
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in expected)
    try:
        names = con.sql(
            f"SELECT * FROM read_json('{quoted}', format = 'newline_delimited', "
            "sample_size = -1) LIMIT 0"
        ).columns
    except duckdb.Error as exc:
        raise InputError(f"{path}: not valid JSON Lines: {exc}") from exc
    _check_columns(path, names, expected)
    return con.sql(
        f"SELECT * FROM read_json('{quoted}', format = 'newline_delimited', "
        f"columns = {{{columns}}})"
    )


def _check_columns(path: Path, names: list[str], expected: tuple[str, ...]) -> None:
    missing = [c for c in expected if c not in names]
    if missing:
        raise InputError(f"{path}: missing required column(s): {', '.join(missing)}")
    extra = [c for c in names if c not in expected]
    if extra:
        warnings.warn(f"{path}: ignoring extra column(s): {', '.join(extra)}", stacklevel=3)


def open_events(con: duckdb.DuckDBPyConnection, path: Path) -> duckdb.DuckDBPyRelation:
    """The five event columns of ``path``, in file order.

    Text columns stay text; a typed timestamp or score column (Parquet) keeps its type, which
    validation checks natively. Raises :class:`InputError` for an unreadable file or a missing
    column (naming it).
    """
    relation = scan_file(con, path)
    _check_columns(path, relation.columns, EVENT_COLUMNS)
    return event_columns(relation)


#: Columns validation reads in their own type when the input has one (a Parquet timestamp).
TYPED_COLUMNS = ("timestamp", "feature_adoption_score")


def event_columns(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """The event columns; identifiers and types as text, timestamp and score as they are."""
    return relation.select(", ".join(
        f'"{c}"' if c in TYPED_COLUMNS else f'CAST("{c}" AS VARCHAR) AS "{c}"'
        for c in EVENT_COLUMNS))


def is_parquet(path: Path) -> bool:
    return _suffix(Path(path)) in _PARQUET


def count_rows_hint(path: Path) -> int | None:
    """The row count when it is cheap to know (Parquet metadata), for progress bars."""
    if is_parquet(path):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return None

"""Open Parquet, CSV and JSON Lines inputs as rows of named columns, for validation.

Every input becomes batches of ``source_row``, ``raw_<column>`` for each wanted column and
``malformed`` (a row that is not a record: see :mod:`text_formats`). CSV and JSON Lines values
are text exactly as written (so a bad value is quarantined as it was written, and ``00042``
keeps its zeros); Parquet columns keep their types, which validation checks natively.

A column mapping (``{source: column}``, from ``--map SRC=DEST`` or the repo's
``usage_features.yaml``) renames the file's columns first; extra columns are ignored with a
warning. File names are never pasted into SQL nor read as glob patterns: CSV and JSON Lines are
opened by Python, and DuckDB reads a Parquet file through a symbolic link with a fixed name in
a private temporary directory, passed as a bound parameter.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from usage_features.ingestion import text_formats
from usage_features.schema import EVENT_COLUMNS

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv")
_JSONL = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")
#: Columns validation reads in their own type when the input has one (a Parquet timestamp).
TYPED_COLUMNS = ("timestamp", "feature_adoption_score", "signup_at", "churned_at")


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


def is_event_file(path: Path) -> bool:
    """A visible file in a format ``ingest`` reads (by its name)."""
    path = Path(path)
    return is_event_name(path.name) and path.is_file()


def is_event_name(name: str) -> bool:
    """A visible name with the suffix of a format ``ingest`` reads (the file is not looked at:
    it may be anything, even a symbolic link)."""
    try:
        _suffix(Path(name))
    except InputError:
        return False
    return not name.startswith(".")


def is_parquet(path: Path) -> bool:
    return _suffix(Path(path)) in _PARQUET


def count_rows_hint(path: Path) -> int | None:
    """The row count when it is cheap to know (Parquet metadata), for progress bars."""
    if is_parquet(path):
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    return None


@dataclass
class Input:
    """One opened input: where it came from, its columns' types, and how to read its rows."""

    path: Path | None
    types: dict[str, str]
    batches: Callable[[int], Iterator[pa.RecordBatch]]
    #: Parquet only: a relation of ``source_row``, ``raw_<column>``..., ``malformed`` that
    #: DuckDB can scan in one statement (and report progress on).
    relation: duckdb.DuckDBPyRelation | None = None
    #: The optional columns the input does not have (read as nulls).
    absent: frozenset[str] = frozenset()


class LinkDirectory:
    """A private temporary directory of safely named links to input files (a context)."""

    def __enter__(self) -> LinkDirectory:
        self.root = Path(tempfile.mkdtemp(prefix="usage-features-input-"))
        self._count = 0
        if any(c in str(self.root) for c in "*?[{\\'"):  # DuckDB would read it as a pattern
            shutil.rmtree(self.root, ignore_errors=True)
            raise InputError(f"the temporary directory {self.root.parent} has a glob or quote "
                             "character in its path; set TMPDIR to a plain directory")
        return self

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def link(self, path: Path) -> str:
        self._count += 1
        link = self.root / f"input-{self._count}.parquet"
        os.symlink(Path(path).resolve(), link)
        return str(link)


def open_input(con: duckdb.DuckDBPyConnection, path: Path, links: LinkDirectory,
               required: tuple[str, ...] = EVENT_COLUMNS, optional: tuple[str, ...] = (),
               mapping: Mapping[str, str] | None = None) -> Input:
    """Open ``path`` for the ``required`` and ``optional`` columns (absent optional ones are
    null). Raises :class:`InputError` for an unreadable file or a missing required column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = _suffix(path)
    wanted = required + optional
    try:
        if suffix in _PARQUET:
            return _open_parquet(con, path, links, required, wanted, mapping or {})
        if suffix in _CSV:
            header = text_formats.csv_header(path)
            _check_delimiter(path, header)
            sources = resolve_columns(path, header, required, wanted, mapping or {})
            positions = {c: header.index(s) for c, s in sources.items()}

            def read(n: int) -> Iterator[pa.RecordBatch]:
                return text_formats.csv_batches(path, positions, n)
        else:
            keys = text_formats.jsonl_keys(path)
            if not keys and path.stat().st_size:
                raise InputError(f"{path}: no line is a JSON object; JSON Lines holds one "
                                 "object per line")
            sources = resolve_columns(path, keys, required, wanted, mapping or {})

            def read(n: int) -> Iterator[pa.RecordBatch]:
                return text_formats.jsonl_batches(path, sources, n)
    except text_formats.MalformedFileError as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None
    return Input(path, dict.fromkeys(wanted, "VARCHAR"),
                 lambda n: _with_absent(read(n), wanted), absent=frozenset(wanted) - set(sources))


def _check_delimiter(path: Path, header: list[str]) -> None:
    if len(header) == 1 and any(c in header[0] for c in ";|\t,"):
        raise InputError(f"{path}: the header is one column, {header[0]!r}: a .csv file must "
                         "be comma-separated (tab-separated: name it .tsv)")


def _open_parquet(con, path: Path, links: LinkDirectory, required, wanted, mapping) -> Input:
    count_rows_hint(path)  # a truncated or foreign file fails here, with its name
    try:
        relation = con.sql("SELECT * FROM read_parquet($path, file_row_number = true)",
                           params={"path": links.link(path)})
        names = [c for c in relation.columns if c != "file_row_number"]
        sources = resolve_columns(path, names, required, wanted, mapping)
        columns = [(duckdb.ColumnExpression("file_row_number") + duckdb.ConstantExpression(1)
                    ).alias("source_row")]
        for column in wanted:
            if column not in sources:
                expression = duckdb.ConstantExpression(None).cast(duckdb.sqltype("VARCHAR"))
            else:
                expression = duckdb.ColumnExpression(sources[column])
                if column not in TYPED_COLUMNS:
                    expression = expression.cast(duckdb.sqltype("VARCHAR"))
            columns.append(expression.alias(f"raw_{column}"))
        columns.append(duckdb.ConstantExpression(False).alias("malformed"))
        relation = relation.select(*columns)
        types = {c: str(t) for c, t in zip(relation.columns, relation.types)}
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot be read as Parquet: {exc}") from None
    return Input(path, {c: types[f"raw_{c}"] for c in wanted},
                 lambda n: _numbered(relation, n), relation, frozenset(wanted) - set(sources))


def table_input(con: duckdb.DuckDBPyConnection, table: pa.Table) -> Input:
    """An in-memory table of the event columns (the repository port's ``add``)."""
    relation = con.from_arrow(table)
    types = {c: str(t) for c, t in zip(relation.columns, relation.types)}
    relation = relation.select(
        duckdb.ConstantExpression(0).alias("source_row"),
        *[(duckdb.ColumnExpression(c) if c in TYPED_COLUMNS
           else duckdb.ColumnExpression(c).cast(duckdb.sqltype("VARCHAR"))).alias(f"raw_{c}")
          for c in EVENT_COLUMNS],
        duckdb.ConstantExpression(False).alias("malformed"))
    return Input(None, {c: types[c] for c in EVENT_COLUMNS}, lambda n: _numbered(relation, n))


def _numbered(relation: duckdb.DuckDBPyRelation, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """The relation's batches, ``source_row`` renumbered 1, 2, ... in order (an Arrow table
    has no row numbers of its own)."""
    first = 1
    for batch in relation.to_arrow_reader(chunk_rows):
        rows = pa.array(range(first, first + batch.num_rows), pa.int64())
        yield batch.set_column(0, "source_row", rows)
        first += batch.num_rows


def _with_absent(batches: Iterator[pa.RecordBatch], wanted: tuple[str, ...]
                 ) -> Iterator[pa.RecordBatch]:
    """Every wanted column, an absent (optional) one as nulls, in order."""
    for batch in batches:
        arrays = [batch.column("source_row")]
        for column in wanted:
            name = f"raw_{column}"
            arrays.append(batch.column(name) if name in batch.schema.names
                          else pa.nulls(batch.num_rows, pa.string()))
        arrays.append(batch.column("malformed"))
        yield pa.RecordBatch.from_arrays(
            arrays, ["source_row", *[f"raw_{c}" for c in wanted], "malformed"])


def resolve_columns(path: Path, names: list[str], required: tuple[str, ...],
                    wanted: tuple[str, ...], mapping: Mapping[str, str]) -> dict[str, str]:
    """``{column: the file's column}`` for every wanted column the file has (after mapping).

    Two file columns for one column is an error; so is a missing required column (naming
    it); other columns are ignored with a warning.
    """
    found: dict[str, str] = {}
    extra = []
    for name in names:
        column = mapping.get(name, name if name not in mapping.values() else None)
        if column not in wanted:
            extra.append(name)
            continue
        if column in found:
            raise InputError(f"{path}: both {found[column]!r} and {name!r} would be column "
                             f"{column!r}; map or remove one of them")
        found[column] = name
    missing = [c for c in required if c not in found]
    if missing:
        sources = {t: s for s, t in mapping.items()}
        named = [f"{c} (mapped from {sources[c]!r}, which is absent)" if c in sources else c
                 for c in missing]
        unused = [n for n in names if n not in found.values()]
        raise InputError(f"{path}: missing required column(s): {', '.join(named)}; "
                         "map a column to it with --map SRC=DEST"
                         + (f" (the file's other columns: {', '.join(unused)})" if unused else ""))
    if extra:
        listed = ", ".join(name or "'' (unnamed)" for name in extra)
        warnings.warn(f"{path}: ignoring extra column(s): {listed}", stacklevel=3)
    return found

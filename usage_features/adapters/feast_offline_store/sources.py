"""Feast ``FileSource``s as DuckDB views: paths resolved against the repo, never pasted into SQL.

A source's path reaches DuckDB only as an argument of the relation API (``read_parquet``); the
SQL around it names columns through :func:`ident` and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pyarrow.parquet as pq
from feast.data_source import DataSource
from feast.infra.offline_stores.file_source import FileSource
from feast.repo_config import RepoConfig

from usage_features.adapters.duckdb_connection import literal_path


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (DuckDB's double quotes, embedded quotes doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def local_path(repo_path, uri: str) -> Path:
    """A local file or directory path, relative ones taken from the repo (not the cwd)."""
    parsed = urlparse(str(uri))
    if parsed.scheme and parsed.scheme != "file" and len(parsed.scheme) > 1:
        raise ValueError(f"{uri}: only local paths are supported by DuckDBAsOfOfflineStore")
    path = Path(parsed.path if parsed.scheme == "file" else str(uri))
    if not path.is_absolute() and repo_path is not None:
        path = Path(repo_path) / path
    return path


def file_source(source: DataSource) -> FileSource:
    if not isinstance(source, FileSource):
        raise ValueError(f"{source.name}: DuckDBAsOfOfflineStore reads only FileSource (Parquet),"
                         f" got {type(source).__name__}")
    return source


def source_path(config: RepoConfig, source: DataSource) -> Path:
    return local_path(config.repo_path, file_source(source).path)


def parquet_files(path: Path) -> tuple[Path, ...]:
    """The Parquet files a source at ``path`` reads (see :func:`register_source`)."""
    return tuple(sorted(path.rglob("*.parquet"))) if path.is_dir() else (path,)


def source_columns(config: RepoConfig, source: DataSource) -> list[str]:
    """The column names :func:`register_source` gives the source's view (its field mapping
    applied), from the Parquet files' footers, without DuckDB."""
    path = source_path(config, source)
    if not path.exists():
        raise ValueError(f"{source.name}: source path {path} does not exist")
    files = parquet_files(path)
    if not files:
        raise ValueError(f"{source.name}: no Parquet file under {path}")
    columns = list(dict.fromkeys(name for f in files for name in pq.read_schema(f).names))
    mapping = {old: new for old, new in source.field_mapping.items() if old in columns}
    return [mapping.get(c, c) for c in columns]


def register_source(con: duckdb.DuckDBPyConnection, config: RepoConfig, source: DataSource,
                    name: str, mapped: bool = True) -> list[str]:
    """Create the view ``name`` over ``source`` (its field mapping applied if ``mapped``).

    A directory reads as every Parquet file below it. Returns the view's column names.
    Feast asks the ``pull_*`` methods for the source's own column names and maps them itself.
    """
    path = source_path(config, source)
    if not path.exists():
        raise ValueError(f"{source.name}: source path {path} does not exist")
    # the path read literally (a [ * or ? in it is no pattern); below a directory, every file
    target = f"{literal_path(path)}/**/*.parquet" if path.is_dir() else literal_path(path)
    raw = f"{name}__raw"
    con.read_parquet(target, union_by_name=True).create_view(raw, replace=True)
    columns = con.table(raw).columns
    mapping = {old: new for old, new in (source.field_mapping if mapped else {}).items()
               if old in columns and old != new}
    rename = ", ".join(f"{ident(old)} AS {ident(new)}" for old, new in mapping.items())
    star = f"* RENAME ({rename})" if rename else "*"
    con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS SELECT {star} FROM {ident(raw)}")
    return [mapping.get(c, c) for c in columns]


def resolve_column(name: str, columns: list[str], source: DataSource, role: str) -> str:
    """The view column holding ``name`` (a source column, possibly renamed by the mapping)."""
    if name in columns:
        return name
    mapped = source.field_mapping.get(name)
    if mapped in columns:
        return mapped
    raise ValueError(f"{source.name}: no {role} column {name!r} in the source "
                     f"(columns: {', '.join(columns)})")

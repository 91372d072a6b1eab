"""Writing Parquet for the store: saved datasets, offline writes, feature-service logs.

Every file appears whole or not at all: it is written under a temporary name beside its target
and renamed into place.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from feast.errors import SavedDatasetLocationAlreadyExists

from usage_features.adapters.files import atomic_path


def write_file_atomically(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)


def is_directory_destination(path: Path) -> bool:
    """Feast's rule: a destination not ending in ``.parquet`` is a directory of files."""
    return path.is_dir() or path.suffix != ".parquet"


def persist(table: pa.Table, path: Path, location: str, allow_overwrite: bool) -> None:
    """Write ``table`` to a file or directory destination, refusing to overwrite unless allowed."""
    if path.exists() and not allow_overwrite:
        raise SavedDatasetLocationAlreadyExists(location=location)
    if not is_directory_destination(path):
        if path.is_dir():
            raise ValueError(f"{location} is a directory; cannot write a file there")
        write_file_atomically(table, path)
        return
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    write_file_atomically(table, staging / "part-0.parquet")
    old = path.with_name(f".{path.name}.{uuid.uuid4().hex}.old")
    if path.exists():
        os.replace(path, old)
    os.replace(staging, path)
    if old.is_dir():
        shutil.rmtree(old)
    else:
        old.unlink(missing_ok=True)


def existing_schema(path: Path) -> pa.Schema | None:
    if not path.exists():
        return None
    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        return pq.read_schema(files[0]) if files else None
    return pq.read_schema(path)


def conform(table: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """``table`` cast to ``schema`` (same column names, in order), or a clear error."""
    if table.column_names != schema.names:
        raise ValueError(f"{what}: columns {table.column_names} do not match the existing "
                         f"columns {schema.names} (same names, same order)")
    try:
        return table.cast(schema.remove_metadata())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"{what}: cannot convert the rows to the existing schema "
                         f"{schema.remove_metadata()}: {error}") from None


def append(table: pa.Table, path: Path, what: str) -> None:
    """Append ``table`` to the Parquet file or directory ``path`` (created if absent)."""
    schema = existing_schema(path)
    if schema is not None:
        table = conform(table, schema, what)
    if path.is_dir():
        write_file_atomically(table, path / f"part-{uuid.uuid4().hex}.parquet")
    elif schema is None:
        write_file_atomically(table, path)
    else:
        write_file_atomically(pa.concat_tables([pq.read_table(path), table]), path)


def write_log(table: pa.Table, directory: Path, partition_by: list[str] | None) -> None:
    """One new file of logged rows under ``directory`` (hive partitions if ``partition_by``)."""
    if not partition_by:
        write_file_atomically(table, directory / f"{uuid.uuid4().hex}.parquet")
        return
    staging = directory.with_name(f".{directory.name}.{uuid.uuid4().hex}.tmp")
    pq.write_to_dataset(table, root_path=staging, partition_cols=partition_by,
                        basename_template=f"{uuid.uuid4().hex}-{{i}}.parquet")
    for file in staging.rglob("*.parquet"):
        target = directory / file.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, target)
    shutil.rmtree(staging)

"""Row-level access to a Parquet feature file: a file of fixed-width rows beside it.

A Parquet file is read a row group at a time (some 120,000 rows, every column decoded), and
DuckDB reads no page index: fetching the feature columns of 1,000 rows spread over a 10^8-event
table decodes all of it. The sidecar ``.<name>.rows`` holds the file's fixed-width columns
(numbers, booleans, dates, timestamps) row by row, each row one record of the same size with a
bitmap of its nulls: row ``r`` is one read at ``r * record size``, and nothing is decoded. It
costs disk, about 5x the LZ4 Parquet file. (Read, not memory-mapped: the kernel maps page-cache
folios of up to 2 MB at a time, so a few rows per megabyte would map the whole file.)

The sidecar names the Parquet file's size and modification time it was written from; one that
does not match (the Parquet file rewritten since, by another writer) is never read.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from usage_features.adapters.files import atomic_path

_MAGIC = b"UFROWS1\n"
#: Rows converted at a time when writing (bounds the writer's memory).
_WRITE_ROWS = 1 << 18


def sidecar_path(parquet: Path) -> Path:
    """Where ``parquet``'s sidecar lives (a dot file: no ``*.parquet`` glob matches it)."""
    return parquet.with_name(f".{parquet.stem}.rows")


def _stamp(parquet: Path) -> str:
    stat = parquet.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _storage(kind: pa.DataType) -> np.dtype | None:
    """The fixed-width numpy type ``kind`` is stored as; None for a column not stored."""
    if pa.types.is_boolean(kind):
        return np.dtype("u1")
    if pa.types.is_timestamp(kind) or pa.types.is_date64(kind) or pa.types.is_duration(kind):
        return np.dtype("<i8")
    if pa.types.is_date32(kind):
        return np.dtype("<i4")
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return np.dtype(kind.to_pandas_dtype()).newbyteorder("<")
    return None


def _arrow_storage(kind: pa.DataType) -> pa.DataType:
    """The Arrow type of ``kind``'s stored values (a view: same layout)."""
    if pa.types.is_boolean(kind):
        return kind
    return pa.from_numpy_dtype(_storage(kind).newbyteorder("="))


def _record(schema: pa.Schema) -> np.dtype:
    """One row: its null bitmap, then each stored column (fields ``nulls``, ``c0``, ``c1``...)."""
    return np.dtype([("nulls", "u1", ((len(schema) + 7) // 8,)),
                     *((f"c{i}", _storage(f.type)) for i, f in enumerate(schema))])


def write_sidecar(parquet: Path) -> Path:
    """Write ``parquet``'s sidecar (via a temporary file and a rename)."""
    stamp = _stamp(parquet)
    target = sidecar_path(parquet)
    with atomic_path(target) as temporary:
        _write_sidecar_file(parquet, stamp, temporary)
    return target


def _write_sidecar_file(parquet: Path, stamp, temporary: Path) -> None:
    """The sidecar's bytes, to ``temporary``; checks the size it should have."""
    with pq.ParquetFile(parquet) as source, open(temporary, "wb") as out:
        schema = pa.schema([f for f in source.schema_arrow if _storage(f.type) is not None])
        record = _record(schema)
        rows_in_file = source.metadata.num_rows
        header = json.dumps({"stamp": stamp, "rows": rows_in_file,
                             "schema": schema.serialize().to_pybytes().hex()}).encode()
        out.write(_MAGIC + struct.pack("<Q", len(header)) + header)
        for batch in source.iter_batches(batch_size=_WRITE_ROWS, columns=schema.names):
            rows = np.zeros(batch.num_rows, dtype=record)
            valid = np.empty((batch.num_rows, len(schema)), dtype=bool)
            for i, field in enumerate(schema):
                column = batch.column(field.name)
                valid[:, i] = column.is_valid().to_numpy(zero_copy_only=False)
                kind = _arrow_storage(field.type)
                zero = pa.scalar(False) if kind == pa.bool_() else pa.scalar(0, kind)
                column = column.view(kind).fill_null(zero)
                rows[f"c{i}"] = column.to_numpy(zero_copy_only=False)
            rows["nulls"] = np.packbits(~valid, axis=1, bitorder="little")
            out.write(rows.tobytes())
    expected = len(_MAGIC) + 8 + len(header) + rows_in_file * record.itemsize
    if os.path.getsize(temporary) != expected:
        raise OSError(f"{sidecar_path(parquet)}: wrote {os.path.getsize(temporary)} bytes, "
                      f"expected {expected}")


def has_current_sidecar(parquet: Path) -> bool:
    """Whether ``parquet`` has a sidecar written from the file as it is now."""
    sidecar = Sidecar.open(parquet)
    if sidecar is None:
        return False
    sidecar.close()
    return True


def remove_sidecar(parquet: Path) -> None:
    sidecar_path(parquet).unlink(missing_ok=True)


class Sidecar:
    """An open, current sidecar of one Parquet file (see :meth:`open`)."""

    def __init__(self, parquet: Path, stamp: str, handle, start: int, rows: int,
                 schema: pa.Schema) -> None:
        self._parquet, self._stamp = parquet, stamp
        self._handle, self._start, self.rows, self.schema = handle, start, rows, schema
        self._record = _record(schema)

    def is_current(self) -> bool:
        """Whether the Parquet file is still the one the sidecar was written from (check it
        after reading row numbers from the file: a writer may have replaced it meanwhile)."""
        try:
            return _stamp(self._parquet) == self._stamp
        except OSError:
            return False

    @classmethod
    def open(cls, parquet: Path) -> Sidecar | None:
        """``parquet``'s sidecar if there is one written from the file as it is now; else None."""
        try:
            current = _stamp(parquet)
            handle = open(sidecar_path(parquet), "rb")  # noqa: SIM115 - owned by the Sidecar
        except OSError:
            return None
        try:
            if handle.read(len(_MAGIC)) != _MAGIC:
                raise ValueError("not a row sidecar")
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
            if header["stamp"] != current:
                raise ValueError("written from another version of the Parquet file")
            schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(header["schema"])))
        except (ValueError, KeyError, struct.error, pa.ArrowInvalid):
            handle.close()
            return None
        return cls(parquet, current, handle, len(_MAGIC) + 8 + length, header["rows"], schema)

    @property
    def names(self) -> list[str]:
        return self.schema.names

    def close(self) -> None:
        self._handle.close()

    def take(self, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """``columns`` of the file's rows ``rows`` (0-based row numbers), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.rows):
            raise IndexError(f"rows outside 0..{self.rows - 1}")
        size, fd = self._record.itemsize, self._handle.fileno()
        data = b"".join(os.pread(fd, size, self._start + r * size) for r in rows.tolist())
        records = np.frombuffer(data, dtype=self._record)
        nulls = np.unpackbits(records["nulls"], axis=1, bitorder="little").astype(bool)
        arrays = []
        for name in columns:
            i = self.schema.get_field_index(name)
            kind = self.schema.field(i).type
            storage = _arrow_storage(kind)
            values = records[f"c{i}"].astype(storage.to_pandas_dtype() if storage != pa.bool_()
                                             else bool)
            arrays.append(pa.array(values, mask=nulls[:, i], type=storage).view(kind))
        return pa.table(arrays, names=columns)

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

Each record ends with its check, a 64-bit hash of its bytes keyed by the sidecar's random salt
and the row's number (:func:`_checks`), so a reader checks exactly the records it reads: a changed
byte, a record copied from another row or another sidecar, fails its check
(:class:`~usage_features.adapters.checksums.DamagedFileError` names the sidecar). The hash is
NumPy arithmetic over whole records (a CRC-32 per record, the previous version's, cost a Python
call each: the largest month's sidecar at 10^8 events, 2.1 M records, took 3.8 s, now 2.2 s).
A sidecar of that version is not read (the Parquet file is) until the build rewrites it
(:func:`is_older_version`).

The writer returns the sidecar's size, SHA-256 and its header's SHA-256 for the build to record
(:func:`write_sidecar`); a reader given that record refuses a sidecar that is missing, stale or
of another size or header instead of falling back to the Parquet file.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from usage_features.adapters.checksums import MISSING, DamagedFileError
from usage_features.adapters.files import atomic_path

_MAGIC = b"UFROWS3\n"
#: The magic of the versions before, whose sidecars are rewritten, never read.
_OLDER = (b"UFROWS2\n",)
#: Rows converted at a time when writing (bounds the writer's memory).
_WRITE_ROWS = 1 << 18
#: Records filled at a time (about 1 MB at 200 bytes a record: they stay in the cache).
_BLOCK_ROWS = 1 << 12
#: Rows read by :meth:`Sidecar.take` at most this many records apart are read in one call,
#: the records between them with them (some 200 bytes each). Measured at 10^7 events, 100,000
#: rows: 32 apart, 24,000 calls read 91 MB in 0.07-0.12 s (the buffer's first touch costs as
#: much as the copy); 16 apart, 34,000 calls and 39 MB, 0.08 s every time; 8 apart, the same.
_GAP_RECORDS = 16
#: Runs not in the page cache are announced to the kernel (``POSIX_FADV_WILLNEED``) before
#: they are read, so that reads from disk overlap instead of waiting one by one: at 10^8
#: events, the first retrieval of 100,000 rows with every file out of the page cache took
#: 5.0 s, 1.1 s with it. Which runs are cached, a read that does not wait says
#: (``RWF_NOWAIT``): runs in the cache cost no announcement. Where the OS has neither, not.
_ADVISE = hasattr(os, "posix_fadvise")
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


def _read_cached(fd: int, buffer: memoryview, start: int) -> int:
    """Read into ``buffer`` from ``start`` what the page cache holds, without waiting for the
    disk; how many bytes (0 where the OS cannot read without waiting)."""
    global _NOWAIT
    if _NOWAIT is None:
        return 0
    try:
        return os.preadv(fd, [buffer], start, _NOWAIT)
    except BlockingIOError:
        return 0
    except OSError:  # a file system without it: every read may wait
        _NOWAIT = None
        return 0


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
    """One row: its null bitmap, each stored column (fields ``nulls``, ``c0``, ``c1``...), zero
    padding to whole 8-byte words, then its check (``check``: :func:`_checks`)."""
    fields = [("nulls", "u1", ((len(schema) + 7) // 8,)),
              *((f"c{i}", _storage(f.type)) for i, f in enumerate(schema))]
    body = np.dtype(fields).itemsize
    padding = -body % 8
    return np.dtype([*fields, *([("padding", "u1", (padding,))] if padding else []),
                     ("check", "<u8")])


def _checks(records: np.ndarray, rows: np.ndarray, salt: int) -> np.ndarray:
    """Each record's check: its body's 8-byte words (little-endian) times odd multipliers drawn
    from the salt, plus its row number (xor the salt, plus 1) times one more, summed modulo
    2^64. A change of any one word changes the sum (an odd number is invertible modulo 2^64),
    as does a record read at another row; an all-zero record never passes (the row's term is
    never 0); a record of another sidecar's passes with odds of 2^-64."""
    words = records.view("<u8").reshape(len(records), records.dtype.itemsize // 8)[:, :-1]
    multipliers = _multipliers(salt, words.shape[1] + 1)
    keyed = (np.asarray(rows, dtype=np.uint64) ^ np.uint64(salt)) + np.uint64(1)
    return (words * multipliers[:-1]).sum(axis=1, dtype=np.uint64) + keyed * multipliers[-1]


def _multipliers(salt: int, n: int) -> np.ndarray:
    return np.random.default_rng(salt).integers(0, 2**64, size=n, dtype=np.uint64) | np.uint64(1)


def write_sidecar(parquet: Path, target: Path | None = None) -> dict:
    """Write ``parquet``'s sidecar (via a temporary file and a rename; to ``target``, default
    its place beside the file); its record: ``{"size", "sha256", "header"}`` (the SHA-256 of the
    whole file and of its header)."""
    stamp = _stamp(parquet)
    target = target or sidecar_path(parquet)
    with atomic_path(target) as temporary:
        record = _write_sidecar_file(parquet, stamp, temporary)
    return record


def _write_sidecar_file(parquet: Path, stamp, temporary: Path) -> dict:
    """The sidecar's bytes, to ``temporary``; checks the size it should have."""
    whole = hashlib.sha256()
    with pq.ParquetFile(parquet) as source, open(temporary, "wb") as out:
        schema = pa.schema([f for f in source.schema_arrow if _storage(f.type) is not None])
        record = _record(schema)
        rows_in_file = source.metadata.num_rows
        salt = secrets.randbits(32)
        header = json.dumps({"stamp": stamp, "rows": rows_in_file, "salt": salt,
                             "schema": schema.serialize().to_pybytes().hex()}).encode()
        head = _MAGIC + struct.pack("<Q", len(header)) + header
        out.write(head)
        whole.update(head)
        first = 0
        for batch in source.iter_batches(batch_size=_WRITE_ROWS, columns=schema.names):
            columns, valid = [], np.empty((batch.num_rows, len(schema)), dtype=bool)
            for i, field in enumerate(schema):
                column = batch.column(field.name)
                valid[:, i] = column.is_valid().to_numpy(zero_copy_only=False)
                kind = _arrow_storage(field.type)
                zero = pa.scalar(False) if kind == pa.bool_() else pa.scalar(0, kind)
                columns.append(column.view(kind).fill_null(zero).to_numpy(zero_copy_only=False))
            nulls = np.packbits(~valid, axis=1, bitorder="little")
            # filled a block at a time: each block's records stay in the cache while every
            # column is written into them (a column at a time over the whole batch is a pass
            # over all its memory per column)
            for start in range(0, batch.num_rows, _BLOCK_ROWS):
                end = min(start + _BLOCK_ROWS, batch.num_rows)
                rows = np.zeros(end - start, dtype=record)
                rows["nulls"] = nulls[start:end]
                for i, values in enumerate(columns):
                    rows[f"c{i}"] = values[start:end]
                rows["check"] = _checks(rows, np.arange(first + start, first + end), salt)
                data = memoryview(rows).cast("B")
                out.write(data)
                whole.update(data)
            first += batch.num_rows
    expected = len(head) + rows_in_file * record.itemsize
    if os.path.getsize(temporary) != expected:
        raise OSError(f"{sidecar_path(parquet)}: wrote {os.path.getsize(temporary)} bytes, "
                      f"expected {expected}")
    return {"size": expected, "sha256": whole.hexdigest(),
            "header": hashlib.sha256(head).hexdigest()}


def is_older_version(sidecar: Path) -> bool:
    """Whether ``sidecar`` was written by an earlier version of this module (read by none: the
    build rewrites it)."""
    try:
        with open(sidecar, "rb") as handle:
            return handle.read(len(_MAGIC)) in _OLDER
    except OSError:
        return False


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

    def __init__(self, parquet: Path, stamp: str | None, handle, start: int, rows: int,
                 schema: pa.Schema, salt: int) -> None:
        self._parquet, self._stamp = parquet, stamp
        self._handle, self._start, self.rows, self.schema = handle, start, rows, schema
        self._salt = salt
        self._record = _record(schema)

    @property
    def path(self) -> Path:
        return sidecar_path(self._parquet)

    def is_current(self) -> bool:
        """Whether the Parquet file is still the one the sidecar was written from (check it
        after reading row numbers from the file: a writer may have replaced it meanwhile).
        Opened with a record: always (the reader checks the file against its own record)."""
        if self._stamp is None:
            return True
        try:
            return _stamp(self._parquet) == self._stamp
        except OSError:
            return False

    @classmethod
    def open(cls, parquet: Path, record: dict | None = None) -> Sidecar | None:
        """``parquet``'s sidecar if there is one written from the file as it is now; else None.

        With the ``record`` :func:`write_sidecar` returned, a sidecar that is missing, or whose
        size or header differ from it, raises
        :class:`~usage_features.adapters.checksums.DamagedFileError` instead (the Parquet
        file's own record then ties the two together: its modification time is not
        compared). Either way a sidecar shorter or longer than its header says raises it.
        """
        path = sidecar_path(parquet)
        try:
            current = _stamp(parquet)
            handle = open(path, "rb")  # noqa: SIM115 - owned by the Sidecar
        except OSError:
            if record is not None:
                raise DamagedFileError(path, MISSING) from None
            return None
        try:
            size = os.fstat(handle.fileno()).st_size
            if record is not None and size != record["size"]:
                raise DamagedFileError(path, f"{size:,} bytes where {record['size']:,} were "
                                             "written (truncated or changed)")
            magic = handle.read(len(_MAGIC))
            raw_length = handle.read(8)
            (length,) = struct.unpack("<Q", raw_length)
            raw_header = handle.read(length)
            if record is not None and hashlib.sha256(
                    magic + raw_length + raw_header).hexdigest() != record["header"]:
                raise DamagedFileError(path, "its header differs from what was written "
                                             "(SHA-256 mismatch)")
            if magic in _OLDER:  # rewritten by the next build; the Parquet file is read
                handle.close()
                return None
            if magic != _MAGIC:
                raise ValueError("not a row sidecar of this version")
            header = json.loads(raw_header)
            if record is None and header["stamp"] != current:
                raise ValueError("written from another version of the Parquet file")
            schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(header["schema"])))
            start = len(_MAGIC) + 8 + length
            expected = start + header["rows"] * _record(schema).itemsize
            if size != expected:
                raise DamagedFileError(path, f"{size:,} bytes where its header says "
                                             f"{expected:,} (truncated or changed)")
        except DamagedFileError:
            handle.close()
            raise
        except (ValueError, KeyError, TypeError, struct.error, pa.ArrowInvalid):
            handle.close()
            if record is not None:
                raise DamagedFileError(path, "not a row sidecar as written") from None
            return None
        return cls(parquet, current if record is None else None, handle, start,
                   header["rows"], schema, header["salt"])

    @property
    def names(self) -> list[str]:
        return self.schema.names

    def close(self) -> None:
        self._handle.close()

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """The records of ``rows`` (in that order), read in runs: rows at most
        :data:`_GAP_RECORDS` apart are read by one call, the records between them with them."""
        size, fd = self._record.itemsize, self._handle.fileno()
        if not len(rows):
            return np.zeros(0, dtype=self._record)
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        breaks = np.flatnonzero(np.diff(ordered) > _GAP_RECORDS) + 1
        firsts = ordered[np.r_[0, breaks]]
        lasts = ordered[np.r_[breaks - 1, len(ordered) - 1]]
        lengths = (lasts - firsts + 1) * size
        offsets = np.cumsum(lengths) - lengths
        data = np.empty(int(lengths.sum()), dtype=np.uint8)  # each run read into its place
        view = memoryview(data)
        # what the page cache holds is read at once; the rest is announced to the kernel
        # before the first of it is read, so that reads from disk overlap
        waiting = []
        for start, n, offset in zip((self._start + firsts * size).tolist(), lengths.tolist(),
                                    offsets.tolist()):
            got = _read_cached(fd, view[offset:offset + n], start)
            if got < n:
                waiting.append((start + got, n - got, offset + got))
        if _ADVISE:
            for start, n, _ in waiting:
                os.posix_fadvise(fd, start, n, os.POSIX_FADV_WILLNEED)
        for start, n, offset in waiting:
            if os.preadv(fd, [view[offset:offset + n]], start) != n:
                raise DamagedFileError(self.path, "shorter than its header says (truncated)")
        run = np.repeat(np.arange(len(firsts)), np.diff(np.r_[0, breaks, len(ordered)]))
        at = np.empty(len(rows), dtype=np.intp)
        at[order] = offsets[run] // size + (ordered - firsts[run])
        # records moved whole, as opaque bytes (a structured dtype's copy goes field by field:
        # 100,000 records of 28 fields, 0.1 s of a 0.5 s retrieval)
        whole = np.dtype((np.void, size))
        return np.frombuffer(data, dtype=whole)[at].view(self._record)

    def take(self, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """``columns`` of the file's rows ``rows`` (0-based row numbers), in that order; each
        record read is checked (a damaged one raises
        :class:`~usage_features.adapters.checksums.DamagedFileError`)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.rows):
            raise IndexError(f"rows outside 0..{self.rows - 1}")
        records = self._read(rows)
        bad = np.flatnonzero(_checks(records, rows, self._salt) != records["check"])
        if len(bad):
            raise DamagedFileError(
                self.path, f"{len(bad):,} of the {len(rows):,} records read differ from what "
                           f"was written (check mismatch; row {rows[bad[0]]} first)")
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


"""Checksums of stored files: what was written is what is read, or a clear error naming the file.

Three kinds, each checked where it costs least:

- a whole file's SHA-256 and size (:func:`file_record`, :func:`check_file`): the event log's
  files, the daily table, the sidecars, every file ``verify`` and ``build`` check;
- a Parquet file's **column chunks** (:func:`parquet_record`, :func:`check_parquet`): besides
  its SHA-256, the CRC-32 of its footer and of each column chunk (one column of one row group,
  the unit a reader decodes), with their byte ranges. A reader checks the footer (so the ranges
  it will read are the recorded ones) and the chunks of just the columns it reads;
- a JSON object that carries its own SHA-256 (:func:`write_checked_json`,
  :func:`read_checked_json`): the build's state.

(Row sidecars check each record themselves: see :mod:`usage_features.adapters.row_sidecar`.)

Every failed check raises :class:`DamagedFileError`: one line naming the file, what is wrong
with it and what repairs it. CRC-32 catches every change of up to 32 consecutive bits and any
other change but for one chance in 2^32; a check is against damage (a disk, a copy, a hand), not
against someone who can rewrite both the file and its record.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from usage_features.adapters.files import atomic_write
from usage_features.adapters.stored_files import StoredFileError

#: The fix for a feature table, sidecar or build state: rebuilt from the event log.
REBUILD = ("run `usage-features build` (it rebuilds it from the event log) or "
           "`usage-features verify --repair`")


class DamagedFileError(StoredFileError):
    """A stored file is missing, truncated or changed since it was written (one line): a
    :class:`StoredFileError`, so every command and the HTTP service report it as one."""

    def __init__(self, path: Path | str, problem: str, fix: str = REBUILD) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(path, problem, fix)



def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_record(path: Path) -> dict:
    """``{"size", "sha256"}`` of ``path``."""
    return {"size": os.path.getsize(path), "sha256": sha256_file(path)}


#: A recorded file that is not there.
MISSING = "missing (the build recorded it)"


def file_problem(path: Path, record: dict) -> str | None:
    """What differs between ``path`` and its ``record`` (None: nothing)."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        return MISSING
    return content_problem(size, lambda: sha256_file(path), record)


#: A file modified less than this long ago may be modified again within the file system's
#: timestamp granularity without its time changing ("racy"): its time is not recorded.
RACY_SECONDS = 2.0


def file_problem_by_time(path: Path, record: dict, now: float) -> str | None:
    """:func:`file_problem`, without reading a file whose size and modification time are those
    recorded in ``record["mtime_ns"]``; a file read in full and found as written gets its time
    recorded there, unless modified less than :data:`RACY_SECONDS` before ``now`` (epoch
    seconds). A change that restores the file's time is not seen (``verify`` reads every
    file)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return MISSING
    if stat.st_size == record["size"] and stat.st_mtime_ns == record.get("mtime_ns"):
        return None
    problem = content_problem(stat.st_size, lambda: sha256_file(path), record)
    if problem is None and stat.st_mtime_ns < (now - RACY_SECONDS) * 1e9:
        record["mtime_ns"] = stat.st_mtime_ns
    else:
        record.pop("mtime_ns", None)
    return problem


def content_problem(size: int, sha256, record: dict) -> str | None:
    """What differs between content of ``size`` bytes and its ``record`` (None: nothing);
    ``sha256()`` gives the content's digest, computed only when the sizes agree."""
    if size != record["size"]:
        return f"{size:,} bytes where {record['size']:,} were written (truncated or changed)"
    if sha256() != record["sha256"]:
        return "its content differs from what was written (SHA-256 mismatch)"
    return None


def check_file(path: Path, record: dict, fix: str = REBUILD) -> None:
    """Raise :class:`DamagedFileError` unless ``path`` is as ``record`` says."""
    problem = file_problem(path, record)
    if problem:
        raise DamagedFileError(path, problem, fix)


def parquet_record(path: Path) -> dict:
    """The whole-file record of a Parquet file, with its footer's and column chunks' CRC-32:
    ``footer: [offset, length, crc]``, ``chunks: {column: [[offset, length, crc], ...]}`` (one
    per row group), ``rows``."""
    record = file_record(path)
    size = record["size"]
    metadata = pq.ParquetFile(path).metadata
    chunks: dict[str, list[list[int]]] = {}
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)
        try:
            footer = _footer_range(view, size)
            record["footer"] = [*footer, zlib.crc32(view[footer[0]:footer[0] + footer[1]])]
            for g in range(metadata.num_row_groups):
                group = metadata.row_group(g)
                for c in range(group.num_columns):
                    column = group.column(c)
                    start, length = _chunk_range(column)
                    chunks.setdefault(column.path_in_schema, []).append(
                        [start, length, zlib.crc32(view[start:start + length])])
        finally:
            view.release()
    record["chunks"] = chunks
    record["rows"] = metadata.num_rows
    return record


def _footer_range(data, size: int) -> tuple[int, int]:
    """(offset, length) of a Parquet file's footer, its length and its closing magic."""
    length = int.from_bytes(data[size - 8:size - 4], "little")
    return size - 8 - length, length + 8


def _chunk_range(column) -> tuple[int, int]:
    start = column.data_page_offset
    if column.has_dictionary_page and column.dictionary_page_offset:
        start = min(start, column.dictionary_page_offset)
    return start, column.total_compressed_size


def check_parquet(path: Path, record: dict, columns: Iterable[str] | None = None,
                  fix: str = REBUILD) -> None:
    """Check what a reader of ``columns`` (None: every column) reads of ``path`` against its
    :func:`parquet_record`: its size, its footer, and those columns' chunks."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise DamagedFileError(path, MISSING, fix) from None
    with handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        if size != record["size"]:
            raise DamagedFileError(path, f"{size:,} bytes where {record['size']:,} were "
                                         "written (truncated or changed)", fix)
        wanted = record["chunks"] if columns is None else {
            c: record["chunks"][c] for c in columns if c in record["chunks"]}
        ranges = [("footer", *record["footer"])] + [
            (name, *chunk) for name, chunks in wanted.items() for chunk in chunks]
        # one buffer read into again and again: no fresh pages for every chunk
        buffer = memoryview(bytearray(max(length for _, _, length, _ in ranges)))
        for name, start, length, crc in ranges:
            read = os.preadv(fd, [buffer[:length]], start)
            if zlib.crc32(buffer[:read]) != crc or read != length:
                what = "its footer" if name == "footer" else f"column {name}"
                raise DamagedFileError(path, f"{what} differs from what was written "
                                             "(CRC-32 mismatch)", fix)


def write_checked_json(path: Path, value: dict) -> None:
    """Write ``value`` (a JSON object) atomically, with the SHA-256 of its content."""
    atomic_write(path, json.dumps({**value, "sha256": _json_digest(value)}, indent=1,
                                  sort_keys=True))


def read_checked_json(path: Path, fix: str = REBUILD) -> dict:
    """The object :func:`write_checked_json` wrote; :class:`DamagedFileError` if the file is
    not that object as written (not JSON, no checksum, or a checksum that differs)."""
    try:
        value = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise DamagedFileError(path, "not the JSON object that was written", fix) from None
    if not isinstance(value, dict) or not isinstance(value.get("sha256"), str):
        raise DamagedFileError(path, "carries no checksum (written by an earlier version, or "
                                     "changed by hand)", fix)
    recorded = value.pop("sha256")
    if _json_digest(value) != recorded:
        raise DamagedFileError(path, "its content differs from what was written "
                                     "(SHA-256 mismatch)", fix)
    return value


def _json_digest(value: dict) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()

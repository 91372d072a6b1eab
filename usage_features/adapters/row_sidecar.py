"""Row-level access to a Parquet feature file: an uncompressed Arrow IPC copy beside it.

A Parquet file is read a row group at a time (some 120,000 rows, every column decoded), and
DuckDB reads no page index: fetching the feature columns of 1,000 rows spread over a 10^8-event
table decodes all of it. The sidecar ``.<name>.rows.arrow`` holds the same rows uncompressed and
is memory-mapped: taking rows touches only the pages they are on (at most one page per row and
column), nothing is decoded. It costs disk: some 4x the LZ4 Parquet file.

The sidecar names the Parquet file's size and modification time it was written from; one that
does not match (the Parquet file rewritten since, by another writer) is never read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Rows per record batch: a fetch reads some 30 columns x 8 bytes x this per row it takes.
BATCH_ROWS = 1024
_STAMP = b"usage_features.parquet_stamp"


def sidecar_path(parquet: Path) -> Path:
    """Where ``parquet``'s sidecar lives (a dot file: no ``*.parquet`` glob matches it)."""
    return parquet.with_name(f".{parquet.stem}.rows.arrow")


def _stamp(parquet: Path) -> bytes:
    stat = parquet.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}".encode()


def write_sidecar(parquet: Path) -> Path:
    """Write ``parquet``'s sidecar (via a temporary file and a rename)."""
    table = pq.read_table(parquet)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           _STAMP: _stamp(parquet)})
    target = sidecar_path(parquet)
    temporary = target.with_name(target.name + ".tmp")
    with pa.OSFile(str(temporary), "wb") as sink, \
            pa.ipc.new_file(sink, table.schema) as writer:
        # one chunk first, so that every batch but the last is full
        writer.write_table(table.combine_chunks(), max_chunksize=BATCH_ROWS)
    os.replace(temporary, target)
    return target


def remove_sidecar(parquet: Path) -> None:
    sidecar_path(parquet).unlink(missing_ok=True)


class Sidecar:
    """An open, current sidecar of one Parquet file (see :meth:`open`)."""

    def __init__(self, reader: pa.ipc.RecordBatchFileReader) -> None:
        self._reader = reader

    @classmethod
    def open(cls, parquet: Path) -> Sidecar | None:
        """``parquet``'s sidecar if there is one written from the file as it is now; else None."""
        try:
            current = _stamp(parquet)
            reader = pa.ipc.open_file(pa.OSFile(str(sidecar_path(parquet))))  # the footer only
        except (OSError, pa.ArrowInvalid):
            return None
        if (reader.schema.metadata or {}).get(_STAMP) != current:
            return None
        return cls(reader)

    @property
    def batches(self) -> int:
        return self._reader.num_record_batches

    @property
    def names(self) -> list[str]:
        return self._reader.schema.names

    def take(self, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """``columns`` of the file's rows ``rows`` (0-based row numbers), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        batches = rows // BATCH_ROWS
        wanted = np.unique(batches)
        if len(wanted) and wanted[-1] >= self.batches:
            raise IndexError(f"row {rows.max()} is beyond the sidecar's rows")
        table = pa.Table.from_batches(
            [self._reader.get_batch(int(b)).select(columns) for b in wanted],
            schema=pa.schema([self._reader.schema.field(c) for c in columns]))
        # each row's place among the rows of the batches read (all full but the last)
        return table.take(pa.array(np.searchsorted(wanted, batches) * BATCH_ROWS
                                   + rows % BATCH_ROWS))

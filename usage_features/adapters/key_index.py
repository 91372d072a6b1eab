"""Which row of a month file holds a customer's latest features at ``t``: a key index beside it.

A feature month file holds one row per customer and day on which the customer's features
changed, sorted by customer, then day, every timestamp a UTC day start in that month. Its key
index ``.<name>.keys`` says where each customer's rows are and on which days, in three arrays
over the file's customers (sorted by id):

- ``ids``: the customer ids, UTF-8, fixed width (``numpy`` ``S`` type, compared bytewise);
- ``starts``: the file row of each customer's first row;
- ``days``: a 32-bit mask, bit ``d`` set when the customer has a row on day ``d`` of the month.

A customer's latest row at ``t`` in this month is the highest set bit at or below ``t``'s day
(every day bit when ``t`` is after the month), and its file row ``starts`` plus the number of
set bits below it. So the point-in-time match of 100,000 entity rows is a few binary searches
and bit operations per month, with no Parquet read: at 10^8 events the index of a month is
about 2 MB (its file: some 200 MB). Retrieval reads the feature columns of just the matched rows
from the row sidecar (:mod:`~usage_features.adapters.row_sidecar`).

The index is written only for a file it describes exactly (:func:`write_key_index` returns None
otherwise: a key with a NUL byte, unsorted rows, a time that is not a day start of the month),
and is read only with the SHA-256 the build recorded for it (the whole file is read, and checked).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from usage_features.adapters.checksums import MISSING, DamagedFileError, content_problem
from usage_features.adapters.files import atomic_path

_MAGIC = b"UFKEYS1\n"
DAY_US = 86_400_000_000
_NONE = -1


def named_month_start_us(parquet: Path) -> int | None:
    """The start of the UTC month a month file is named after (``YYYY-MM.parquet``), in epoch
    microseconds as an index's ``month_start_us``; None for another name."""
    try:
        start = datetime.strptime(Path(parquet).stem, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(start.timestamp()) * 1_000_000


def key_index_path(parquet: Path) -> Path:
    """Where ``parquet``'s key index lives (a dot file: no ``*.parquet`` glob matches it)."""
    return parquet.with_name(f".{parquet.stem}.keys")


def write_key_index(parquet: Path, key: str, timestamp: str, target: Path | None = None
                    ) -> dict | None:
    """Write the key index of ``parquet`` (rows keyed by the string column ``key``, timed by
    ``timestamp``) to ``target`` (default: its place beside the file), via a temporary file and
    a rename; its record ``{"size", "sha256"}``, or None (and nothing written) when the file is
    not one the index can describe exactly."""
    table = pq.read_table(parquet, columns=[key, timestamp])
    content = _arrays(table.column(key), table.column(timestamp))
    if content is None:
        return None
    ids, starts, days, month_start = content
    header = json.dumps({"key": key, "timestamp": timestamp, "customers": len(ids),
                         "width": ids.dtype.itemsize, "rows": table.num_rows,
                         "month_start_us": month_start}).encode()
    data = b"".join([_MAGIC, struct.pack("<Q", len(header)), header, ids.tobytes(),
                     starts.astype("<i8").tobytes(), days.astype("<u4").tobytes()])
    with atomic_path(target or key_index_path(parquet)) as temporary:
        temporary.write_bytes(data)
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _arrays(keys: pa.ChunkedArray, times: pa.ChunkedArray):
    """(ids, starts, days, month start in us) of a sorted month file; None if it is not one."""
    if keys.null_count or times.null_count or not len(keys):
        return None
    if not pa.types.is_timestamp(times.type):
        return None
    raw = pc.cast(times, pa.timestamp("us", tz="UTC")).to_numpy().view("int64")
    day = np.floor_divide(raw, DAY_US)
    if (raw != day * DAY_US).any():
        return None  # not day starts
    first = datetime.fromtimestamp(int(day.min()) * 86_400, UTC)
    month_start = datetime(first.year, first.month, 1, tzinfo=UTC)
    base = int(month_start.timestamp()) // 86_400
    offset = day - base
    if offset.max() >= 31 or offset.min() < 0 or _next_month(month_start) <= int(day.max()):
        return None  # not one month
    fixed = encode_keys(keys)
    if fixed is None:
        return None
    change = np.flatnonzero(fixed[1:] != fixed[:-1]) + 1
    starts = np.concatenate([[0], change])
    ids = fixed[starts]
    same = np.repeat(np.arange(len(ids)), np.diff(np.append(starts, len(fixed))))
    if (ids[1:] <= ids[:-1]).any():
        return None  # keys not sorted
    within = np.diff(offset)[np.diff(same) == 0]
    if (within <= 0).any():
        return None  # days not increasing within a key
    days = np.zeros(len(ids), dtype=np.uint32)
    np.bitwise_or.at(days, same, (np.uint32(1) << offset.astype(np.uint32)))
    return ids, starts.astype(np.int64), days, int(month_start.timestamp()) * 1_000_000


def _next_month(start: datetime) -> int:
    """The epoch day of the month after ``start``'s."""
    following = (datetime(start.year + 1, 1, 1, tzinfo=UTC) if start.month == 12
                 else datetime(start.year, start.month + 1, 1, tzinfo=UTC))
    return int(following.timestamp()) // 86_400


@dataclass(frozen=True)
class KeyIndex:
    """One month file's key index, read and checked (see :meth:`read`)."""

    key: str
    timestamp: str
    month_start_us: int
    ids: np.ndarray
    starts: np.ndarray
    days: np.ndarray

    @classmethod
    def read(cls, parquet: Path, record: dict) -> KeyIndex:
        """The index of ``parquet`` checked against the build's ``record`` of it
        (:class:`~usage_features.adapters.checksums.DamagedFileError` if it differs)."""
        path = key_index_path(parquet)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DamagedFileError(path, MISSING) from None
        problem = content_problem(len(data), lambda: hashlib.sha256(data).hexdigest(), record)
        if problem:
            raise DamagedFileError(path, problem)
        (length,) = struct.unpack_from("<Q", data, len(_MAGIC))
        start = len(_MAGIC) + 8
        header = json.loads(data[start:start + length])
        n, width = header["customers"], header["width"]
        at = start + length
        ids = np.frombuffer(data, dtype=f"S{width}", count=n, offset=at)
        at += n * width
        starts = np.frombuffer(data, dtype="<i8", count=n, offset=at)
        days = np.frombuffer(data, dtype="<u4", count=n, offset=at + 8 * n)
        return cls(header["key"], header["timestamp"], header["month_start_us"], ids, starts,
                   days)

    def latest(self, keys: np.ndarray, at_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each entity (``keys``: UTF-8 ``S`` array; ``at_us``: int64 epoch microseconds),
        the file row of its latest row at or before that time in this month and that row's
        time (epoch microseconds); -1 for both where the month holds none."""
        rows = np.full(len(keys), _NONE, dtype=np.int64)
        times = np.full(len(keys), _NONE, dtype=np.int64)
        after = at_us >= self.month_start_us
        position = np.searchsorted(self.ids, keys[after])
        inside = position < len(self.ids)
        found = np.zeros(len(position), dtype=bool)
        found[inside] = self.ids[position[inside]] == keys[after][inside]
        which = np.flatnonzero(after)[found]
        k = position[found]
        day = np.minimum((at_us[which] - self.month_start_us) // DAY_US, 31)
        upto = np.where(day >= 31, np.uint64(0xFFFFFFFF),
                        (np.uint64(1) << (day.astype(np.uint64) + np.uint64(1))) - np.uint64(1))
        mask = self.days[k].astype(np.uint64) & upto
        has = mask != 0
        mask, which, k = mask[has], which[has], k[has]
        last = np.frexp(mask.astype(np.float64))[1].astype(np.int64) - 1  # highest set bit
        below = mask & ((np.uint64(1) << last.astype(np.uint64)) - np.uint64(1))
        rows[which] = self.starts[k] + popcount(below)
        times[which] = self.month_start_us + last * DAY_US
        return rows, times


def encode_keys(values: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """Entity key values as a UTF-8 ``S`` array for :meth:`KeyIndex.latest`, a null as ``b""``
    (which no index holds: a null key matches nothing); None for keys that are not strings or
    hold a NUL byte (left to the general join)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return None
    if pc.any(pc.match_substring(values, "\x00")).as_py():
        return None
    encoded = pc.cast(pc.fill_null(values, ""), pa.binary())
    width = max(1, pc.max(pc.binary_length(encoded)).as_py() or 0)
    return encoded.to_numpy(zero_copy_only=False).astype(f"S{width}")


def popcount(values: np.ndarray) -> np.ndarray:
    """The set bits of each 32-bit value (as int64)."""
    v = values.astype(np.uint64)
    v = v - ((v >> np.uint64(1)) & np.uint64(0x55555555))
    v = (v & np.uint64(0x33333333)) + ((v >> np.uint64(2)) & np.uint64(0x33333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F)
    return (((v * np.uint64(0x01010101)) & np.uint64(0xFFFFFFFF)) >> np.uint64(24)).astype(
        np.int64)

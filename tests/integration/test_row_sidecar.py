"""Row sidecars: any row of a Parquet file's fixed-width columns, read back exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from usage_features.adapters import row_sidecar
from usage_features.adapters.row_sidecar import Sidecar, sidecar_path, write_sidecar


def table(n: int = 3000) -> pa.Table:
    rng = np.random.default_rng(0)
    nulls = rng.random(n) < 0.2
    return pa.table({
        "customer_id": pa.array([f"c{i % 17}" for i in range(n)]),  # text: not stored
        "count": pa.array(rng.integers(-5, 10**12, n), mask=nulls),
        "small": pa.array(rng.integers(0, 100, n).astype(np.int16)),
        "score": pa.array(np.where(rng.random(n) < 0.1, np.nan, rng.random(n)), mask=~nulls
                          & (rng.random(n) < 0.1)),  # NaN and null, both
        "flag": pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.1),
        "at": pa.array([datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1e6
                        + int(x) for x in rng.integers(0, 10**13, n)],
                       pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "day": pa.array([date(2025, 1, 1)] * n, pa.date32()),
    })


@pytest.mark.parametrize("taken", [500, 20])  # runs of neighbours read together; lone rows
@pytest.mark.parametrize("blocks", [(1 << 18, 1 << 12), (1000, 7)])  # written in blocks of
def test_taken_rows_equal_the_parquet_rows_in_any_order(tmp_path, taken, blocks, monkeypatch):
    monkeypatch.setattr(row_sidecar, "_WRITE_ROWS", blocks[0])  # batches of 1000 rows, each
    monkeypatch.setattr(row_sidecar, "_BLOCK_ROWS", blocks[1])  # filled 7 records at a time
    path = tmp_path / "2025-01.parquet"
    pq.write_table(table(), path, row_group_size=700)
    write_sidecar(path)
    car = Sidecar.open(path)
    columns = ["count", "small", "score", "flag", "at", "day"]
    assert "customer_id" not in car.names and set(columns) <= set(car.names)
    rows = np.random.default_rng(1).choice(3000, taken)  # repeats, any order
    rows[:2] = [0, 2999]
    got = car.take(rows, columns)
    want = pq.read_table(path).select(columns).take(pa.array(rows))
    assert got.schema == want.schema
    for name in columns:  # NaN is not null, and equal to itself here
        assert got.column(name).is_null().equals(want.column(name).is_null()), name
        a = got.column(name).to_numpy(zero_copy_only=False)
        b = want.column(name).to_numpy(zero_copy_only=False)
        assert ((a == b) | (a != a) & (b != b) | got.column(name).is_null().to_numpy(
            zero_copy_only=False)).all(), name
    assert car.take(np.array([], dtype=np.int64), columns).num_rows == 0


def test_a_sidecar_is_not_opened_once_its_parquet_file_changes(tmp_path):
    path = tmp_path / "2025-01.parquet"
    pq.write_table(table(), path)
    write_sidecar(path)
    assert Sidecar.open(path) is not None
    pq.write_table(table(2999), path)
    assert Sidecar.open(path) is None
    sidecar_path(path).write_bytes(b"junk")
    assert Sidecar.open(path) is None
    assert Sidecar.open(tmp_path / "missing.parquet") is None


@pytest.mark.parametrize(("cached", "half"), [(set(), set()), ({0, 2}, set()), ({0}, {3})])
def test_runs_not_in_the_page_cache_are_announced_before_the_first_is_read(
        tmp_path, monkeypatch, cached, half):
    """Reads from disk overlap only if the kernel hears of them all first (WILLNEED); a run the
    page cache holds is read at once, unannounced (a read that does not wait: RWF_NOWAIT)."""
    path = tmp_path / "2025-01.parquet"
    pq.write_table(table(), path)
    write_sidecar(path)
    car = Sidecar.open(path)
    calls: list[tuple[str, int, int]] = []
    read, runs = row_sidecar.os.preadv, []

    def preadv(fd, buffers, start, flags=0):
        n = sum(len(b) for b in buffers)
        if flags:  # without waiting: only the cached runs (by their order), the others EAGAIN
            runs.append(start)
            if len(runs) - 1 in half:  # its first half cached: read, the rest waits
                calls.append(("now", start, n // 2))
                return read(fd, [buffers[0][:n // 2]], start)
            if len(runs) - 1 not in cached:
                raise BlockingIOError(11, "not in the page cache")
        calls.append(("now" if flags else "read", start, n))
        return read(fd, buffers, start, *([flags] if flags else []))

    monkeypatch.setattr(row_sidecar, "_ADVISE", True)
    monkeypatch.setattr(row_sidecar, "_NOWAIT", getattr(row_sidecar.os, "RWF_NOWAIT", 8))
    monkeypatch.setattr(row_sidecar.os, "posix_fadvise",
                        lambda fd, start, n, how: calls.append(("advise", start, n)))
    monkeypatch.setattr(row_sidecar.os, "preadv", preadv)

    got = car.take(np.array([2999, 5, 6, 1500, 0, 900]), ["count"])

    assert len(runs) == 4  # [0..6], 900, 1500, 2999: each tried without waiting first
    kinds = [kind for kind, _, _ in calls if kind != "now"]
    assert kinds == sorted(kinds)  # every "advise" before the first waiting "read"
    advised = {(s, n) for kind, s, n in calls if kind == "advise"}
    assert advised == {(s, n) for kind, s, n in calls if kind == "read"}
    halves = {s: n for kind, s, n in calls if kind == "now" and s in {runs[k] for k in half}}
    assert {s for s, _ in advised} == {s + halves.get(s, 0) for k, s in enumerate(runs)
                                       if k not in cached}
    assert got.column("count").to_pylist() == pq.read_table(path).column("count").take(
        pa.array([2999, 5, 6, 1500, 0, 900])).to_pylist()


def test_a_file_system_that_cannot_read_without_waiting_reads_every_run_waiting(
        tmp_path, monkeypatch):
    """Where RWF_NOWAIT is refused (not EAGAIN: unsupported), reads wait, and it is not
    asked again."""
    path = tmp_path / "2025-01.parquet"
    pq.write_table(table(), path)
    write_sidecar(path)
    car = Sidecar.open(path)
    read, flagged = row_sidecar.os.preadv, []

    def preadv(fd, buffers, start, flags=0):
        if flags:
            flagged.append(start)
            raise OSError(95, "Operation not supported")
        return read(fd, buffers, start)

    monkeypatch.setattr(row_sidecar, "_NOWAIT", getattr(row_sidecar.os, "RWF_NOWAIT", 8))
    monkeypatch.setattr(row_sidecar.os, "preadv", preadv)
    rows = np.array([2999, 5, 1500, 0, 900])

    got = car.take(rows, ["count"])

    assert len(flagged) == 1 and row_sidecar._NOWAIT is None
    assert got.column("count").to_pylist() == pq.read_table(path).column("count").take(
        pa.array(rows)).to_pylist()

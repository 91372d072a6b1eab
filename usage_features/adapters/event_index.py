"""The event log's id index: which stored rows may hold a given event id, without reading the
log. Ingest asks it for every new id, then reads just the rows it names to compare values.

Layout under ``DIR/data/events/_index/``::

    index.json        the catalogue (a checked JSON object, see below)
    run-<id>.npy      a run: a 2 x n array of 64-bit integers, the entries' hashes of their
                      event ids (sorted) and their places (file number << 32 | row number;
                      the file number indexes the run's list of log files)

A run is written whole under a temporary name and renamed (:func:`atomic_path`), then the
catalogue is replaced (:func:`write_checked_json`); a run the catalogue does not name is left
over from a crash and deleted. The catalogue names, per run, its log files (path under the log
and size), its length and, per block of :data:`BLOCK` entries, the block's first hash and the
CRC-32 of its hashes and places. A lookup routes each hash to its blocks by those first hashes,
checks only those blocks (memory-mapped, not copied) and searches each hash within its own
blocks only, so a damaged run is found, never believed. The hash is DuckDB's ``hash()`` of the
id; the catalogue records its values for a few probe ids, and an index whose probes hash
otherwise (another DuckDB) is rebuilt.

Runs are added LSM-style: each ingest indexes its new log files as one small run, and the
newest two runs are merged while the older is no larger than the newer (a binary counter: an
entry is rewritten about log2(history / day) times, a few runs stay), up to
:data:`MAX_RUN_ENTRIES` entries a run.

The index is derived data: :meth:`EventIdIndex.sync` (under the log's write lock) compares the
catalogue with the log's files, indexes the files it lacks (an existing repo, or an ingest
killed between its commit and its index update), and rebuilds the whole index when it is
missing, damaged, or names a file the log no longer holds as it was.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usage_features.adapters.checksums import (
    DamagedFileError,
    read_checked_json,
    write_checked_json,
)
from usage_features.adapters.duckdb_connection import parquet_list, sql_string
from usage_features.adapters.files import atomic_path

INDEX_DIR = "_index"
CATALOGUE = "index.json"
#: Entries per checked block (64 KiB of hashes, 64 KiB of places): the unit a lookup reads.
BLOCK = 8192
#: The largest run a merge makes (128 MiB): a merge holds two runs and the result in memory.
MAX_RUN_ENTRIES = 1 << 23
#: SQL of the 64-bit hash of an event id (``{}``: the id's expression).
HASH_SQL = "hash({})"
#: Ids whose hashes the catalogue records: another hash function, another index.
PROBES = ("", "0", "event-1", "00000000-0000-0000-0000-000000000000")
VERSION = 1
#: The fix of a damaged index (it is derived from the log).
REINDEX = ("rebuilt from the event log by the next ingest, or now by "
           "`usage-features verify --repair`")


class DamagedIndexError(DamagedFileError):
    """A run or the catalogue is not what was written: the index is rebuilt from the log."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(path, problem, REINDEX)


@dataclass
class Run:
    name: str
    entries: int
    files: list[str]
    sizes: list[int]
    #: Per block: [first hash, CRC-32 of its bytes].
    blocks: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "entries": self.entries, "files": self.files,
                "sizes": self.sizes, "blocks": self.blocks}


class EventIdIndex:
    """The id index of the event log rooted at ``root`` (``DIR/data/events``).

    ``hash_sql``: the SQL of an id's 64-bit hash (a test forces collisions with a tiny one).
    """

    def __init__(self, root: Path, hash_sql: str | None = None) -> None:
        self.root = root
        self.dir = root / INDEX_DIR
        self.hash_sql = hash_sql or HASH_SQL
        self.runs: list[Run] = []
        #: Why the index was rebuilt from the whole log (None: it was not).
        self.rebuilt: str | None = None
        self._checked: set[tuple[str, int]] = set()  # (run, block) found as written

    # -- reading ----------------------------------------------------------------------------

    def probes(self, con) -> list[int]:
        """The hashes of :data:`PROBES`, in order."""
        hashes = ", ".join(self.hash_sql.format(sql_string(p)) for p in PROBES)
        return [int(h) for h in con.execute(f"SELECT {hashes}").fetchall()[0]]

    def load(self, con) -> None:
        """Read the catalogue; :class:`DamagedIndexError` when missing, damaged or made with
        another hash."""
        path = self.dir / CATALOGUE
        if not path.exists():
            raise DamagedIndexError(path, "missing")
        catalogue = read_checked_json(path, REINDEX)
        if (catalogue.get("version") != VERSION or catalogue.get("hash") != self.hash_sql
                or catalogue.get("probes") != self.probes(con)):
            raise DamagedIndexError(path, "made with another hash function")
        self.runs = [Run(**run) for run in catalogue["runs"]]

    @property
    def entries(self) -> int:
        """The stored rows indexed."""
        return sum(run.entries for run in self.runs)

    def files(self) -> dict[str, int]:
        """The indexed log files (path under the log -> size)."""
        return {name: size for run in self.runs for name, size in zip(run.files, run.sizes)}

    def lookup(self, hashes: np.ndarray) -> dict[str, np.ndarray]:
        """The stored rows whose id hashes to one of ``hashes``: log file (path under the log)
        -> its row numbers (sorted, unique). :class:`DamagedIndexError` for a damaged block.

        Only the blocks that may hold a hash are checked and searched: from the last one
        starting before it to the last one starting at or before it (equal hashes may straddle
        a boundary); each hash is searched in its own stretch of consecutive such blocks."""
        queries = sorted_unique(np.asarray(hashes, dtype=np.uint64))
        names: list[str] = []  # every run's files, one after another
        places = []
        for run in self.runs:
            offset = len(names)
            names += run.files
            if not run.entries or not len(queries):
                continue
            fences = np.array([b[0] for b in run.blocks], dtype=np.uint64)
            first = np.maximum(np.searchsorted(fences, queries, "left") - 1, 0)
            last = np.searchsorted(fences, queries, "right") - 1
            held = last >= 0
            wanted, first, last = queries[held], first[held], last[held]
            if not len(wanted):
                continue
            if (last - first).max() <= 1:  # marked, not sorted: a day's ids touch every block
                marked = np.zeros(len(fences), dtype=bool)
                marked[first] = marked[last] = True
                needed = np.flatnonzero(marked)
            else:  # (a tiny hash only)
                needed = sorted_unique(np.concatenate(
                    [np.arange(a, b + 1) for a, b in zip(first, last)]))
            data = self._open(run)
            for number in needed:
                self._check(run, data, int(number))
            # stretches of consecutive needed blocks; each hash lies in one of them
            breaks = np.flatnonzero(np.diff(needed) != 1) + 1
            starts, ends = needed[np.r_[0, breaks]], needed[np.r_[breaks - 1, len(needed) - 1]]
            stretch = np.searchsorted(starts, first, "right") - 1
            bounds = np.flatnonzero(np.diff(stretch)) + 1
            for group, s_ in zip(np.split(wanted, bounds), stretch[np.r_[0, bounds]]):
                low, high = int(starts[s_]) * BLOCK, min(int(ends[s_] + 1) * BLOCK, run.entries)
                found = data[0, low:high]
                left = np.searchsorted(found, group, "left")
                counts = np.searchsorted(found, group, "right") - left
                if counts.sum():
                    at = np.arange(counts.sum()) + np.repeat(left - (np.cumsum(counts) - counts),
                                                             counts)
                    place = np.array(data[1, low:high][at])
                    places.append(place + (np.uint64(offset) << np.uint64(32)))
            del data
        if not places:
            return {}
        keys = sorted_unique(np.concatenate(places))  # by file, then row
        files, rows = keys >> np.uint64(32), keys & np.uint64(0xFFFFFFFF)
        bounds = np.flatnonzero(np.diff(files)) + 1
        return {names[int(group[0])]: numbers.astype(np.int64) for group, numbers in
                zip(np.split(files, bounds), np.split(rows, bounds))}

    def _open(self, run: Run) -> np.ndarray:
        path = self.dir / f"{run.name}.npy"
        try:
            data = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DamagedIndexError(path, f"cannot be read ({exc})") from None
        if data.dtype != np.dtype("<u8") or data.shape != (2, run.entries):
            raise DamagedIndexError(path, "not the run that was written")
        return data

    def _check(self, run: Run, data: np.ndarray, number: int) -> None:
        """The block as written, or :class:`DamagedIndexError`; once per lookup's object (an
        input looked up in parts touches the same blocks again)."""
        if (run.name, number) in self._checked:
            return
        block = slice(number * BLOCK, (number + 1) * BLOCK)
        if _crc(data[0, block], data[1, block]) != run.blocks[number][1]:
            raise DamagedIndexError(self.dir / f"{run.name}.npy",
                                    f"block {number} differs from what was written "
                                    "(CRC-32 mismatch)")
        self._checked.add((run.name, number))

    def _read(self, run: Run) -> np.ndarray:
        """A whole run (a copy), each block checked: a damaged run is never merged."""
        data = self._open(run)
        for number in range(len(run.blocks)):
            self._check(run, data, number)
        copy = np.array(data)
        del data
        return copy

    def problems(self, con, log_files: list[Path]) -> tuple[list[str], int]:
        """What is wrong with the index (each block checked), one line each; and how many log
        files it lacks (not a problem: the next ingest indexes them; all of them when there is
        no index yet)."""
        if not (self.dir / CATALOGUE).exists():
            return [], len(log_files)
        try:
            self.load(con)
            for run in self.runs:
                self._read(run)
        except DamagedFileError as exc:
            return [f"{exc.path}: {exc.problem}; {REINDEX}"], 0
        indexed = self.files()
        present = {str(p.relative_to(self.root)): p for p in log_files}
        for name, size in indexed.items():
            path = present.get(name)
            if path is None or path.stat().st_size != size:
                return [f"{self.dir / CATALOGUE}: names {name}, which the log no longer holds "
                        f"as it was; {REINDEX}"], 0
        return [], len(set(present) - set(indexed))

    # -- writing (under the log's write lock) -----------------------------------------------

    def sync(self, con, log_files: list[Path]) -> None:
        """Bring the index up to date with ``log_files`` (every committed file of the log):
        index the files it lacks, rebuild it when it is missing, damaged or stale."""
        try:
            self._sync(con, log_files)
        except DamagedIndexError as exc:  # a run found damaged while merging it
            self.rebuild(con, log_files, exc.problem)

    def _sync(self, con, log_files: list[Path]) -> None:
        try:
            self.load(con)
            problem = None
            indexed = self.files()
            for name, size in indexed.items():
                path = self.root / name
                if not path.exists() or path.stat().st_size != size:
                    problem = f"names {name}, which the log no longer holds as it was"
                    break
        except DamagedFileError as exc:
            problem = exc.problem
        if problem:
            self.rebuilt, self.runs = problem, []
            indexed = {}
        new = [p for p in log_files if str(p.relative_to(self.root)) not in indexed]
        if new or problem:
            self._add(con, new)

    def rebuild(self, con, log_files: list[Path], why: str) -> None:
        self.rebuilt, self.runs = why, []
        self._add(con, log_files)

    def _add(self, con, files: list[Path]) -> None:
        """Index ``files`` as new runs, merge, write the catalogue, delete unnamed runs."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for chunk in _chunks(files, MAX_RUN_ENTRIES):
            self.runs.append(self._write_run(
                self._entries(con, chunk), [str(p.relative_to(self.root)) for p in chunk],
                [p.stat().st_size for p in chunk]))
            self._compact()
        write_checked_json(self.dir / CATALOGUE, {
            "version": VERSION, "hash": self.hash_sql, "probes": self.probes(con),
            "runs": [run.to_dict() for run in self.runs]})
        named = {f"{run.name}.npy" for run in self.runs}
        for path in self.dir.glob("run-*.npy"):
            if path.name not in named:
                path.unlink(missing_ok=True)

    def _entries(self, con, files: list[Path]) -> np.ndarray:
        """The 2 x n run of ``files`` (numbered in order), sorted by hash."""
        if not files:
            return np.empty((2, 0), dtype=np.uint64)
        names = ", ".join(f"({sql_string(p)}, {i})" for i, p in enumerate(files))
        columns = con.execute(f"""
            SELECT {self.hash_sql.format('r.event_id')} AS hash, f.number, r.file_row_number
            FROM read_parquet({parquet_list(files)}, filename = true, file_row_number = true,
                              hive_partitioning = false, union_by_name = true) r
            JOIN (VALUES {names}) f(name, number) ON r.filename = f.name""").fetchnumpy()
        hashes = columns["hash"].astype(np.uint64)
        places = ((columns["number"].astype(np.uint64) << np.uint64(32))
                  | columns["file_row_number"].astype(np.uint64))
        order = np.argsort(hashes, kind="stable")
        return np.stack([hashes[order], places[order]])

    def _write_run(self, entries: np.ndarray, files: list[str], sizes: list[int]) -> Run:
        entries = np.ascontiguousarray(entries)
        run = Run(f"run-{uuid.uuid4().hex}", entries.shape[1], files, sizes)
        run.blocks = [[int(entries[0, start]),
                       _crc(entries[0, start:start + BLOCK], entries[1, start:start + BLOCK])]
                      for start in range(0, run.entries, BLOCK)]
        with atomic_path(self.dir / f"{run.name}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, entries)
        return run

    def _compact(self) -> None:
        """Merge the newest two runs while the older is no larger than the newer."""
        while (len(self.runs) >= 2 and self.runs[-2].entries <= self.runs[-1].entries
               and self.runs[-2].entries + self.runs[-1].entries <= MAX_RUN_ENTRIES):
            older, newer = self.runs[-2], self.runs[-1]
            a, b = self._read(older), self._read(newer)
            b[1] += np.uint64(len(older.files)) << np.uint64(32)
            merged = np.concatenate([a, b], axis=1)
            merged = merged[:, np.argsort(merged[0], kind="stable")]
            self.runs[-2:] = [self._write_run(merged, older.files + newer.files,
                                              older.sizes + newer.sizes)]


def _crc(hashes: np.ndarray, places: np.ndarray) -> int:
    """CRC-32 of a block: its hashes, then its places (read in place, not copied)."""
    return zlib.crc32(places, zlib.crc32(hashes))


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``values`` sorted, each once (NumPy 2.4's ``np.unique`` hashes: 30 times slower on 10^5
    64-bit integers)."""
    ordered = np.sort(values)
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(
        ordered) else ordered


def _chunks(files: list[Path], limit: int) -> list[list[Path]]:
    """``files`` in consecutive groups of at most ``limit`` rows (Parquet footers), unless one
    file alone holds more."""
    import pyarrow.parquet as pq  # deferred: only a rebuild of a large log splits its runs

    groups: list[list[Path]] = []
    rows = 0
    for path in files:
        n = pq.ParquetFile(path).metadata.num_rows
        if not groups or (groups[-1] and rows + n > limit):
            groups.append([])
            rows = 0
        groups[-1].append(path)
        rows += n
    return groups

"""The local event log: a Parquet dataset partitioned by UTC event date.

Layout under ``DIR/data/events/``::

    event_date=2026-03-01/part-<batch>-0.parquet
    _staging/<batch>/...          files being written (never read)
    _staging/<batch>.journal      the moves of a commit in progress
    _manifest/<batch>.json        each committed file's size and SHA-256, and its sources

Writers hold an exclusive ``flock`` on ``DIR/data/.lock``, so two ingests at once are serialised.
A commit writes every new file under ``_staging`` first, then a journal naming their final
paths (relative to the log, so a copied repo never names the original's files), then renames
them into place and deletes the journal. If a process dies part way, the next writer finds the
journal and rolls the commit back (deletes the files it had moved), so the log is as it was
before that commit.

Readers see all of a batch or none of it. The renames and the roll-back happen under an
exclusive ``flock`` on ``DIR/data/.commit.lock``; a reader (:meth:`EventLog.snapshot`) holds
it shared while it lists and reads the files, so it waits out a commit in progress (renames
only: milliseconds, never a whole ingest or build), and leaves out the files named by the
journal of a commit that died part way until the next writer rolls it back. A reader needs no
write permission.

Each commit also writes its **manifest** (after the journal, before the renames; a roll-back
deletes it): the size and SHA-256 of every file it adds, and the input files (path and SHA-256)
its rows came from. The log is the source of truth and cannot be rebuilt from itself, so a file
that no longer matches (:meth:`EventLog.problems`, :meth:`EventLog.check`) is reported with the
inputs to ingest again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from usage_features.adapters.checksums import (
    DamagedFileError,
    file_problem,
    file_record,
    read_checked_json,
    write_checked_json,
)
from usage_features.adapters.duckdb_connection import connect, parquet_list
from usage_features.adapters.files import atomic_write, file_lock, fsync_dir
from usage_features.config import RepoPaths
from usage_features.schema import EVENT_COLUMNS

PARTITION_GLOB = "event_date=*/*.parquet"
MANIFESTS = "_manifest"
#: What repairs a damaged manifest (it only describes files: they are unaffected).
MANIFEST_FIX = ("the files it describes can no longer be checked; restore it from a backup, "
                "or run `usage-features verify --repair` to record their checksums as they are")


class EventLog:
    """Files, locking and atomic commits of one repo's event log."""

    def __init__(self, paths: RepoPaths) -> None:
        self.paths = paths
        self.root = paths.events

    def files(self) -> list[Path]:
        """Every file of the log (:data:`PARTITION_GLOB`). Under :meth:`write_lock` only;
        readers use :meth:`snapshot`."""
        try:
            partitions = [e.path for e in os.scandir(self.root)
                          if e.name.startswith("event_date=") and e.is_dir()]
        except FileNotFoundError:
            return []
        return sorted(Path(e.path) for partition in partitions for e in os.scandir(partition)
                      if e.name.endswith(".parquet") and e.is_file())

    def is_empty(self) -> bool:
        """Whether the log has no file (under :meth:`write_lock`; readers use :meth:`snapshot`)."""
        return not any(self.root.glob(PARTITION_GLOB))

    def first_day(self) -> date | None:
        """The UTC day of the log's oldest event (its oldest ``event_date=`` partition's name;
        no file is read); None for an empty log."""
        files = self.files()
        return date.fromisoformat(min(files).parent.name.removeprefix("event_date=")) \
            if files else None

    def latest_event_at(self) -> datetime | None:
        """The latest event timestamp in the log, in UTC (reads only its newest day partition);
        None for an empty log."""
        files = self.files()
        if not files:
            return None
        newest = max(f.parent.name for f in files)
        partition = [f for f in files if f.parent.name == newest]
        with connect() as con:
            (latest,) = con.execute(
                f"SELECT max(timestamp) FROM read_parquet({parquet_list(partition)}, "
                "hive_partitioning = false)").fetchall()[0]
        return latest.astimezone(UTC) if latest is not None else None

    def event_names(self, first: date | None = None, last: date | None = None
                    ) -> dict[str, int]:
        """Events per stored event name on the UTC days ``first`` to ``last`` (inclusive; None:
        unbounded), most frequent first. Reads only those days' partitions, one column."""
        with self.snapshot() as files:
            days = [p for p in files
                    if (first is None or p.parent.name >= f"event_date={first}")
                    and (last is None or p.parent.name <= f"event_date={last}")]
            if not days:
                return {}
            with connect() as con:
                rows = con.execute(
                    f"SELECT event_type, count(*) FROM read_parquet({parquet_list(days)}, "
                    "hive_partitioning = false) GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
        return dict(rows)

    @contextmanager
    def snapshot(self) -> Iterator[list[Path]]:
        """The committed files, none of them changing until the block ends.

        Whole batches only: a commit in progress is waited for, the files of one that died part
        way are left out (the next writer deletes them).
        """
        with file_lock(self.paths.commit_lock, fcntl.LOCK_SH, create=False):
            uncommitted = {path for journal in self._journals() for path in journal}
            yield [p for p in self.files() if p not in uncommitted]

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the repo's exclusive write lock; roll back any commit a crash left half done."""
        self.paths.data.mkdir(parents=True, exist_ok=True)
        with file_lock(self.paths.lock, fcntl.LOCK_EX):
            self._recover()
            yield

    def new_staging_dir(self) -> tuple[str, Path]:
        """A fresh batch id and the empty directory its files are written to."""
        batch = uuid.uuid4().hex
        staging = self.root / "_staging" / batch
        staging.mkdir(parents=True)
        return batch, staging

    def commit(self, batch: str, moves: dict[Path, Path],
               sources: list[dict] | None = None,
               sources_of: dict[Path, list[int]] | None = None) -> None:
        """Move staged files to their final paths, all or nothing (call under the write lock),
        recording each one's checksum in the batch's manifest with ``sources`` (the inputs its
        rows came from: ``{"path", "sha256"}``; ``sources_of``: a staged file's indexes in
        ``sources``, default all of them)."""
        journal = self.root / "_staging" / f"{batch}.journal"
        names = [str(target.relative_to(self.root)) for target in moves.values()]
        sources = sources or []
        every = list(range(len(sources)))
        manifest = {"batch": batch, "sources": sources, "files": {
            str(target.relative_to(self.root)): {
                **file_record(source), "sources": (sources_of or {}).get(source, every)}
            for source, target in moves.items()}}
        with file_lock(self.paths.commit_lock, fcntl.LOCK_EX):
            atomic_write(journal, json.dumps(names))
            (self.root / MANIFESTS).mkdir(exist_ok=True)
            write_checked_json(self._manifest(batch), manifest)
            for source, target in moves.items():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
            for directory in {target.parent for target in moves.values()}:
                fsync_dir(directory)
            journal.unlink()
        shutil.rmtree(self.root / "_staging" / batch, ignore_errors=True)

    def _manifest(self, batch: str) -> Path:
        return self.root / MANIFESTS / f"{batch}.json"

    def records(self) -> tuple[dict[str, dict], list[DamagedFileError]]:
        """Every committed file's record (path under the log -> ``{"size", "sha256",
        "sources"}``, its sources spelled out), and the damaged manifests."""
        pending = {journal.stem for journal in (self.root / "_staging").glob("*.journal")}
        records, damaged = {}, []
        for path in sorted((self.root / MANIFESTS).glob("*.json")):
            if path.stem in pending:
                continue
            try:
                manifest = read_checked_json(path, MANIFEST_FIX)
            except DamagedFileError as exc:
                damaged.append(exc)
                continue
            for name, record in manifest["files"].items():
                records[name] = {**record, "sources": [manifest["sources"][i]
                                                       for i in record["sources"]]}
        return records, damaged

    def problems(self, files: list[Path] | None = None) -> tuple[list[DamagedFileError], int]:
        """What is wrong with the log: each recorded file missing or changed, each damaged
        manifest; and how many of its files no manifest records (ingested before manifests,
        not checked). ``files``: the log's files (default: a snapshot's)."""
        if files is None:
            with self.snapshot() as files:
                return self.problems(files)
        records, found = self.records()
        names = {str(p.relative_to(self.root)) for p in files}
        for name, record in sorted(records.items()):
            problem = file_problem(self.root / name, record)
            if problem:
                found.append(self.damaged(self.root / name, problem, record))
        return found, len(names - set(records))

    def check(self, files: list[Path]) -> None:
        """Raise :class:`DamagedFileError` for the first of ``files`` (and of the recorded files
        of their days) that is missing or changed: for a reader about to build from them."""
        records, _ = self.records()
        days = {f.parent.name for f in files}
        names = {str(f.relative_to(self.root)) for f in files}
        names |= {n for n in records if n.split("/", 1)[0] in days}
        for name in sorted(names & set(records)):
            problem = file_problem(self.root / name, records[name])
            if problem:
                raise self.damaged(self.root / name, problem, records[name])

    def record_unrecorded(self) -> int:
        """Record the checksums of every file no sound manifest records, as the files are now
        (files ingested before manifests existed, or whose manifest is damaged: set aside as
        ``<batch>.json.damaged``); how many. Under the write lock."""
        with self.write_lock():
            records, damaged = self.records()
            files = [p for p in self.files() if str(p.relative_to(self.root)) not in records]
            with file_lock(self.paths.commit_lock, fcntl.LOCK_EX):
                for exc in damaged:
                    os.replace(exc.path, exc.path.with_name(exc.path.name + ".damaged"))
                if files:
                    (self.root / MANIFESTS).mkdir(exist_ok=True)
                    manifest = {"batch": None, "sources": [], "files": {
                        str(p.relative_to(self.root)): {**file_record(p), "sources": []}
                        for p in files}}
                    write_checked_json(self._manifest(f"recorded-{uuid.uuid4().hex}"),
                                       manifest)
        return len(files)

    @staticmethod
    def damaged(path: Path, problem: str, record: dict) -> DamagedFileError:
        """The error for a damaged log file: it names the inputs to ingest again."""
        inputs = ", ".join(f"{s['path']} (SHA-256 {s['sha256'][:16]})" if s.get("path")
                           else "an in-memory table (added through the repository port)"
                           for s in record.get("sources", [])) or "its input file"
        return DamagedFileError(path, problem, (
            "the event log is the source of truth and cannot be rebuilt from itself: restore "
            f"the file from a backup, or move it out of the log and ingest again {inputs} "
            "(`usage-features ingest FILE`; rows already in the log are skipped)"))

    def discard(self, batch: str) -> None:
        shutil.rmtree(self.root / "_staging" / batch, ignore_errors=True)

    def _journals(self) -> Iterator[list[Path]]:
        """The files each unfinished commit names (under the log; never another repo's)."""
        for journal in sorted((self.root / "_staging").glob("*.journal")):
            targets = [self.root / name for name in json.loads(journal.read_text())]
            yield [t for t in targets if t.is_relative_to(self.root)]

    def _recover(self) -> None:
        staging = self.root / "_staging"
        if not staging.exists():
            return
        with file_lock(self.paths.commit_lock, fcntl.LOCK_EX):
            for targets in self._journals():
                for target in targets:
                    target.unlink(missing_ok=True)
            for journal in staging.glob("*.journal"):
                self._manifest(journal.stem).unlink(missing_ok=True)
                journal.unlink()
        shutil.rmtree(staging, ignore_errors=True)



#: Up to this many rows of a file are selected by number; more, by their range.
ROWS_BY_NUMBER = 256


def rows_sql(root: Path, rows: dict[str, np.ndarray]) -> str | None:
    """SQL of the event columns of the given rows of the log's files (path under ``root`` ->
    row numbers, sorted), and maybe of rows between them (a caller filters on the id). DuckDB
    pushes the row numbers down: it reads only the row groups holding them, and of those only
    the vectors of 2,048 rows holding them. None for no row."""
    parts = []
    for name, numbers in sorted(rows.items()):
        if not len(numbers):
            continue
        wanted = (f"IN ({', '.join(str(int(n)) for n in numbers)})"
                  if len(numbers) <= ROWS_BY_NUMBER
                  else f"BETWEEN {int(numbers[0])} AND {int(numbers[-1])}")
        parts.append(f"SELECT * EXCLUDE (file_row_number) FROM read_parquet("
                     f"{parquet_list([root / name])}, file_row_number = true, "
                     f"hive_partitioning = false) WHERE file_row_number {wanted}")
    if not parts:
        return None
    return f"SELECT {', '.join(EVENT_COLUMNS)} FROM ({' UNION ALL BY NAME '.join(parts)})"

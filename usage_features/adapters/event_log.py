"""The local event log: a Parquet dataset partitioned by UTC event date.

Layout under ``DIR/data/events/``::

    event_date=2026-03-01/part-<batch>-0.parquet
    _staging/<batch>/...          files being written (never read)
    _staging/<batch>.journal      the moves of a commit in progress

Writers hold an exclusive ``flock`` on ``DIR/data/.lock``, so two ingests at once are serialised.
A commit writes every new file under ``_staging`` first, then a journal naming their final
paths, then renames them into place and deletes the journal. If a process dies part way, the
next writer finds the journal and rolls the commit back (deletes the files it had moved), so the
log is as it was before that commit. Readers see only ``event_date=*/*.parquet``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from usage_features.config import RepoPaths

PARTITION_GLOB = "event_date=*/*.parquet"


class EventLog:
    """Files, locking and atomic commits of one repo's event log."""

    def __init__(self, paths: RepoPaths) -> None:
        self.paths = paths
        self.root = paths.events

    @property
    def glob(self) -> str:
        """The glob that matches every committed file of the log."""
        return str(self.root / PARTITION_GLOB)

    def files(self) -> list[Path]:
        return sorted(self.root.glob(PARTITION_GLOB))

    def is_empty(self) -> bool:
        return not any(self.root.glob(PARTITION_GLOB))

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Hold the repo's exclusive write lock; roll back any commit a crash left half done."""
        self.paths.data.mkdir(parents=True, exist_ok=True)
        with open(self.paths.lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._recover()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def new_staging_dir(self) -> tuple[str, Path]:
        """A fresh batch id and the empty directory its files are written to."""
        batch = uuid.uuid4().hex
        staging = self.root / "_staging" / batch
        staging.mkdir(parents=True)
        return batch, staging

    def commit(self, batch: str, moves: dict[Path, Path]) -> None:
        """Move staged files to their final paths, all or nothing (call under the write lock)."""
        journal = self.root / "_staging" / f"{batch}.journal"
        _write_atomically(journal, json.dumps([str(target) for target in moves.values()]))
        for source, target in moves.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        _fsync_dirs({target.parent for target in moves.values()})
        journal.unlink()
        shutil.rmtree(self.root / "_staging" / batch, ignore_errors=True)

    def discard(self, batch: str) -> None:
        shutil.rmtree(self.root / "_staging" / batch, ignore_errors=True)

    def _recover(self) -> None:
        staging = self.root / "_staging"
        if not staging.exists():
            return
        for journal in staging.glob("*.journal"):
            for target in json.loads(journal.read_text()):
                Path(target).unlink(missing_ok=True)
            journal.unlink()
        shutil.rmtree(staging, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dirs(directories: set[Path]) -> None:
    for directory in directories:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

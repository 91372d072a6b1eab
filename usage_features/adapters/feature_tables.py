"""The feature tables as stored: what the build recorded of each file, and how a reader checks
what it reads against that record.

The build (:mod:`usage_features.features.build`) records, in its state
(``data/features/_build_state.json``, under :data:`RECORDS`), each file it writes under
``data/features/``: the month files of ``customer_usage`` and their row sidecars, the profile
table and the daily table (:func:`~usage_features.adapters.checksums.parquet_record`, and
:func:`~usage_features.adapters.row_sidecar.write_sidecar`'s record). It writes its files beside
their places and moves them in, then the state, under the exclusive tables lock; a reader
(:class:`StoredTable`, used by the offline store) holds that lock shared while it checks and
reads, so it never sees a build's new files with the older records.

A reader checks, before reading: that the source's files are exactly the recorded ones (a month
deleted, or a file the build never wrote, refuses), and, of each file, the size, the footer and
the column chunks of the columns it reads (a row sidecar, the records it reads). Anything else
is a :class:`~usage_features.adapters.checksums.DamagedFileError` naming the file and the fix.
A source outside the repo's ``data/features/`` (another Feast repo's) is read unchecked.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from usage_features.adapters.checksums import (
    MISSING,
    DamagedFileError,
    check_parquet,
    read_checked_json,
)
from usage_features.adapters.files import file_lock
from usage_features.config import RepoPaths

#: The build state's key of the file records: path under ``data/features/`` -> record.
RECORDS = "files"


def table_key(paths: RepoPaths, path: Path) -> str:
    """A file's key in the records: its path under ``data/features/``."""
    return Path(path).relative_to(paths.features).as_posix()


#: The last state read, by its file's identity: a long-lived reader (``serve``) parses it
#: once per build, not once per request.
_read: dict[Path, tuple[tuple, dict]] = {}


def recorded_files(paths: RepoPaths) -> dict[str, dict]:
    """The build's records of the files it wrote (raises if the state is missing or damaged).

    Read again whenever the state file is another one or was written to (its inode, size,
    modification and change times: a change time cannot be set back)."""
    try:
        stat = paths.build_state.stat()
    except FileNotFoundError:
        raise DamagedFileError(paths.build_state, "missing, so the feature tables cannot be "
                                                  "checked") from None
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    cached = _read.get(paths.build_state)
    if cached is not None and cached[0] == key:
        return cached[1]
    records = read_checked_json(paths.build_state).get(RECORDS)
    if records is None:
        raise DamagedFileError(paths.build_state, "records no checksums of the feature tables "
                                                  "(written by an earlier version)")
    _read.clear()
    _read[paths.build_state] = (key, records)
    return records


@contextmanager
def reading(paths: RepoPaths) -> Iterator[None]:
    """Hold the tables lock shared: no build moves files in meanwhile."""
    with file_lock(paths.tables_lock, fcntl.LOCK_SH, create=False):
        yield


@contextmanager
def publishing(paths: RepoPaths) -> Iterator[None]:
    """Hold the tables lock exclusively, to move a build's files in and record them."""
    with file_lock(paths.tables_lock, fcntl.LOCK_EX):
        yield


class StoredTable:
    """One source (a file, or a directory of Parquet files) of a repo's recorded tables."""

    def __init__(self, paths: RepoPaths, source: Path) -> None:
        self.paths, self.source = paths, Path(source)

    @classmethod
    def of(cls, repo_path, source: Path) -> StoredTable | None:
        """The table at ``source`` if it lies in the repo's ``data/features/``; else None."""
        if repo_path is None:
            return None
        paths = RepoPaths(Path(repo_path))
        source = Path(source).resolve()
        return cls(paths, source) if source.is_relative_to(paths.features) else None

    def files(self, records: dict[str, dict]) -> list[Path]:
        """The source's files, checked to be exactly the recorded ones."""
        if self.source.is_file() or self.source.suffix == ".parquet":
            recorded = {table_key(self.paths, self.source)} & set(records)
            found = [self.source] if self.source.is_file() else []
        else:
            prefix = table_key(self.paths, self.source) + "/"
            recorded = {key for key in records if key.startswith(prefix)
                        and key.endswith(".parquet")}
            found = sorted(self.source.rglob("*.parquet"))
        on_disk = {table_key(self.paths, f) for f in found}
        for key in sorted(recorded - on_disk):
            raise DamagedFileError(self.paths.features / key, MISSING)
        for key in sorted(on_disk - recorded):
            raise DamagedFileError(self.paths.features / key,
                                   "not written by the build (no checksum recorded)")
        return found

    def check(self, records: dict[str, dict], files: Iterable[Path],
              columns: Iterable[str] | None) -> None:
        """Check what a reader of ``columns`` (None: all) reads of ``files``."""
        columns = None if columns is None else list(columns)
        for path in files:
            check_parquet(path, records[table_key(self.paths, path)], columns)

"""A file that cannot be read or written, as one error: which file, what is wrong, what to do.

Engines and libraries fail on a damaged file or a full disk in their own words, some of which
name no file: DuckDB's ``Failed to read file "X": LZ4 decompression failure`` and ``No magic
bytes found at end of file 'X'``, pyarrow's ``Corrupt snappy compressed data.``, Python's
``[Errno 28] No space left on device``. :func:`file_error` turns each into a
:class:`StoredFileError` (:class:`DiskFullError` for a full disk) that names the file, gives the
library's words on one line, printable, and the next step (:func:`next_step`, from where the
file lives in a repo). The use cases run under :func:`stored_files`, pyarrow reads of a named
file under :func:`reading`, and :func:`~usage_features.adapters.files.atomic_path` names the
file a full disk stopped; the command line prints the error as one line, exit status 2.
"""

from __future__ import annotations

import errno
import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pyarrow.parquet as pq

T = TypeVar("T")

#: The next step for a file, by the folder of ``DIR/data/`` it lives in (``{repo}``: DIR).
NEXT_STEPS = {
    "events": "the event log is the source of truth and cannot be rebuilt from itself: restore "
              "this file from a backup, or delete it and ingest again the export its events "
              "came from",
    "features": "the feature tables are derived from the event log: delete {repo}/data/features "
                "and run `usage-features build --repo {repo}` to rebuild them, then "
                "`usage-features materialize --repo {repo}`",
    "customers.parquet": "load the customers table again: `usage-features load-customers FILE "
                         "--repo {repo}`",
    "scores": "delete it: the next `usage-features refresh --repo {repo}` of that day writes it "
              "again",
    "models": "retrain it (`usage-features train --repo {repo}`) or restore the saved pair",
    "reports": "it is written with the model: retrain (`usage-features train --repo {repo}`) or "
               "restore the model's report folder",
    "quarantine": "it holds rejected rows kept for review: restore it from a backup, or delete it",
}
#: A file outside a repo's data: an input given on the command line.
INPUT_STEP = "check the file (complete? in the format its name says?) and give it again"
UNREADABLE_STEP = "give this user read access to it"
DISK_FULL_STEP = ("free space on that disk and run the command again: files are written whole "
                  "or not at all, so none was left half-written")

_DUCKDB = ("duckdb", "_duckdb")
#: DuckDB's words for a Parquet file it cannot read, the file's path in them, and the reason
#: to give (None: DuckDB's own, the group ``reason``).
_DUCKDB_READS = (
    (re.compile(r'Failed to read file "(?P<path>[^"]+)": (?P<reason>.+)', re.S), None),
    (re.compile(r"No magic bytes found at end of file '(?P<path>[^']+)'"),
     "no Parquet footer at its end (truncated, or not a Parquet file)"),
    (re.compile(r"File '(?P<path>[^']+)' too small to be a Parquet file"),
     "too small to be a Parquet file (truncated?)"),
)
_PYARROW_OPEN = re.compile(r"Could not open Parquet input source '(?P<path>[^']+)': "
                           r"(?P<reason>.+)", re.S)
#: A file DuckDB could not write, as its errors name it (JSON inside the message: quotes
#: escaped).
_DUCKDB_WRITE = re.compile(r'Could not write file \\?"(?P<path>[^"\\]+)\\?"')
_NO_SPACE = "No space left on device"
#: Errors of a damaged file that name none (the Parquet footer's metadata garbled, a page
#: whose codec fails): the repo's Parquet files are checked to find it.
_DAMAGE_WORDS = ("compressed data", "decompression", "thrift", "Thrift", "TProtocol",
                 "Invalid data", "Parquet", "parquet", "don't know what type", "Corrupt",
                 "corrupt")


class StoredFileError(OSError):
    """A file that cannot be read: damaged, truncated, not what its name says, or unreadable.

    ``path`` (None when no library said which file), ``reason`` (the library's words, one
    printable line) and ``step``, what to do next.
    """

    def __init__(self, path: Path | str | None, reason: str, step: str | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.reason = one_line(reason)
        self.step = step or next_step(self.path)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "a stored file" if self.path is None else one_line(str(self.path))
        return f"cannot read {where}: {self.reason}; {self.step}"


class DiskFullError(StoredFileError):
    """No space left on the device to write ``path``."""

    def __init__(self, path: Path | str | None, reason: str = _NO_SPACE,
                 step: str = DISK_FULL_STEP) -> None:
        super().__init__(path, reason, step)
        self.errno = errno.ENOSPC

    def __str__(self) -> str:
        where = "a file" if self.path is None else one_line(str(self.path))
        return f"cannot write {where}: {self.reason}; {self.step}"


def one_line(text: str) -> str:
    """``text`` on one line: runs of white space made one space, other control characters
    shown as escapes (a file's bytes never reach the terminal as they are)."""
    text = " ".join(str(text).split())
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def next_step(path: Path | None) -> str:
    """What to do about a damaged ``path``: by where it lives in a repo (:data:`NEXT_STEPS`),
    else (an input file) :data:`INPUT_STEP`."""
    if path is None:
        return ("find the damaged file (`usage-features verify`, or read each with pyarrow) "
                "and restore or rebuild it")
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "data" and parts[i + 1] in NEXT_STEPS:
            return NEXT_STEPS[parts[i + 1]].format(repo=Path(*parts[:i]))
    return INPUT_STEP


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the device has no space left (Python's, pyarrow's or DuckDB's)."""
    return ((isinstance(exc, OSError) and exc.errno == errno.ENOSPC)
            or _NO_SPACE in str(exc))


def is_library_error(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB's or pyarrow's, or an ``OSError``: what reading a damaged
    file raises (not an error of the project's own code)."""
    module = type(exc).__module__.split(".")[0]
    return module in (*_DUCKDB, "pyarrow") or isinstance(exc, OSError)


def damage_reason(exc: BaseException) -> str:
    """What is wrong with the file ``exc`` was raised reading, in one line, without its path
    (which may be a temporary link's)."""
    found = file_error(exc)
    return found.reason if found is not None else one_line(str(exc)) or type(exc).__name__


def file_error(exc: BaseException, repo: Path | None = None) -> StoredFileError | None:
    """``exc`` as a :class:`StoredFileError` when it is about a file that cannot be read or
    written; None for any other error. A damaged file the error does not name is looked for
    among ``repo``'s Parquet files (:func:`find_damaged`)."""
    if isinstance(exc, StoredFileError):
        return exc
    text = str(exc)
    if is_disk_full(exc):
        written = _DUCKDB_WRITE.search(text)
        return DiskFullError(written["path"] if written else getattr(exc, "filename", None))
    module = type(exc).__module__.split(".")[0]
    if module in _DUCKDB:
        for pattern, reason in _DUCKDB_READS:
            found = pattern.search(text)
            if found:
                return StoredFileError(found["path"], reason or found["reason"])
    found = _PYARROW_OPEN.search(text)
    if found and (module == "pyarrow" or isinstance(exc, OSError | ValueError)):
        return StoredFileError(found["path"], found["reason"])
    # (a library's own error, or pyarrow's plain OSError: never one with an errno, such as
    # a FileNotFoundError naming a .parquet file)
    library = module in (*_DUCKDB, "pyarrow") or (type(exc) is OSError and exc.errno is None)
    if repo is not None and library and any(word in text for word in _DAMAGE_WORDS):
        damaged = find_damaged(Path(repo))
        if damaged is not None:
            return StoredFileError(*damaged)
    return None


def find_damaged(repo: Path) -> tuple[Path, str] | None:
    """The first Parquet file of ``repo``'s data that cannot be read, and why (None: every
    one reads). Every footer first (milliseconds a file), then every file whole, one at a
    time: seconds to minutes for a large repo, paid only once a command has failed."""
    data = Path(repo) / "data"
    files = [path for path in sorted(data.rglob("*.parquet"))
             # staging, spill and temporary files are not the repo's
             if not any(part.startswith((".", "_")) for part in path.relative_to(data).parts)]
    for read in (pq.read_metadata, _read_whole):
        for path in files:
            try:
                read(path)
            except Exception as exc:  # whatever pyarrow says of a damaged file
                return path, str(exc)
    return None


def _read_whole(path: Path) -> None:
    """Decode every page of ``path``, one row group at a time (memory: one row group)."""
    with pq.ParquetFile(path) as source:
        for group in range(source.num_row_groups):
            source.read_row_group(group)


@contextmanager
def reading(path: Path | str) -> Iterator[None]:
    """Read ``path`` in the block: a library's error on it becomes a :class:`StoredFileError`
    naming it (a missing file stays a ``FileNotFoundError``)."""
    try:
        yield
    except (FileNotFoundError, StoredFileError):
        raise
    except PermissionError as exc:
        raise StoredFileError(path, exc.strerror or str(exc), UNREADABLE_STEP) from exc
    except (OSError, ValueError) as exc:  # pyarrow's errors are OSError or ValueError
        found = file_error(exc)  # (the words without the path, which may be "<Buffer>")
        if isinstance(found, DiskFullError):
            raise DiskFullError(path) from exc
        raise StoredFileError(path, str(exc) if found is None else found.reason) from exc


def stored_files(function: Callable[..., T]) -> Callable[..., T]:
    """Run the use case ``function`` so that a file it cannot read or write ends it as a
    :class:`StoredFileError` (see :func:`file_error`; the repo searched for a damaged file
    that the error does not name is its arguments', see :func:`repo_of`)."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except StoredFileError:
            raise
        except Exception as exc:
            found = file_error(exc, repo_of([*args, *kwargs.values()]))
            if found is None:
                raise
            raise found from exc

    return run


def repo_of(values) -> Path | None:
    """The repo among a use case's arguments: a ``RepoPaths`` (its ``repo`` and ``data``), a
    context or a config holding one (``paths``) or naming one (``repo``), or the repo's
    directory itself (one with ``data/``)."""
    for value in values:
        for candidate in (value, getattr(value, "paths", None)):
            if hasattr(candidate, "data") and isinstance(getattr(candidate, "repo", None), Path):
                return candidate.repo.resolve()
        repo = getattr(value, "repo", None)
        if isinstance(repo, str | Path):
            return Path(repo).resolve()
        if isinstance(value, Path) and (value / "data").is_dir():
            return value.resolve()
    return None


__all__ = ["DiskFullError", "StoredFileError", "damage_reason", "file_error", "find_damaged",
           "is_disk_full", "is_library_error", "next_step", "one_line", "reading",
           "stored_files"]

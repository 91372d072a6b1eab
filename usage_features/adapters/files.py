"""Atomic file writes: the project's one rule for replacing a file.

A file is written under a temporary name in its own directory (hidden, ``.<name>.<random>.tmp``:
dataset readers skip it, two writers never share it), flushed and ``fsync``-ed, renamed over its
target with ``os.replace``, and then the directory is ``fsync``-ed so that the rename itself
survives a crash. Readers see the old file or the new one, whole; on an error the temporary
file is removed and the target is left as it was.

- :func:`atomic_write` writes bytes or text (UTF-8);
- :func:`atomic_path` yields the temporary path, for writers that need a path (Parquet, CSV,
  DuckDB's ``COPY``, a streaming writer): the file they leave there replaces the target when
  the block ends without an error.

Beside them, :func:`file_lock`: the ``flock`` every lock of a repo is held with.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from usage_features.adapters.stored_files import DiskFullError, is_disk_full


def temporary_path(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (same directory, so same filesystem)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk (the file as its writer closed it); for a directory,
    its entries (a rename into it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (a rename into it) durable."""
    fsync_file(directory)


@contextmanager
def atomic_path(path: Path | str, *, keep_mode: bool = False) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; it replaces ``path`` at the end.

    The block writes (and closes) a file at the yielded path. When the block ends without an
    error the file is fsync-ed and renamed over ``path``, and the directory fsync-ed; on an
    error it is removed and ``path`` is left as it was (no space left on the device: a
    :class:`~usage_features.adapters.stored_files.DiskFullError` naming ``path``).
    ``keep_mode``: the new file takes the permission bits of the file it replaces (else the
    writer's, as for a new file).
    """
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        if keep_mode and path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):  # named after the file it was to replace, not the temporary one
            raise DiskFullError(path) from exc
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path | str, data: bytes | str, *, keep_mode: bool = False) -> None:
    """Replace ``path``'s content with ``data`` (text is written as UTF-8), atomically.

    A new file gets the permission bits ``open`` would give it (0o666 less the umask)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path, keep_mode=keep_mode) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)


@contextmanager
def file_lock(path: Path, operation: int, create: bool = True) -> Iterator[None]:
    """Hold ``flock(operation)`` on ``path`` for the block (a writer creates its directory).

    A reader (``create=False``) creates no directory, and opens the file read-only where it
    may not write; where it can neither create nor open it (a read-only log that no writer
    ever committed to), there is nothing to wait for.
    """
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = open(path, "a")  # noqa: SIM115 - closed by the `with handle` below
    except OSError:
        if create:
            raise
        try:
            handle = open(path)  # noqa: SIM115 - closed by the `with handle` below
        except OSError:
            yield
            return
    with handle:
        fcntl.flock(handle, operation)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


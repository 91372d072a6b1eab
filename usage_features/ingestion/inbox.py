"""An inbox folder of event files, each ingested once, recognised by its content.

The manifest ``DIR/data/inbox.json`` maps the SHA-256 of every file ingested from an inbox to
its name, when and what it gave. A file is pending while its content is not in the manifest: a
file re-delivered under another name is skipped, one re-written in place with new rows is
ingested (and its old rows are duplicates, dropped). The manifest is updated after each file's
ingest commits, so a run killed in between ingests that file again next time: the event log's
de-duplication makes that add nothing.

:meth:`Inbox.scan` sorts the folder's entries (the contract, in docs/operations.md, "The inbox
contract"). Only visible names with an event file's suffix are considered (``notes.txt``,
``.events.csv.tmp`` and ``events.csv.part`` are not: a writer renames a finished file in).
Each is looked at with ``lstat`` first, and

- *refused*, never opened nor followed: a symbolic link, a directory, a FIFO, a device, a
  socket;
- *waiting*, taken on a later run, not recorded: a file modified less than the settle time
  ago, a CSV or JSON Lines file whose content does not end with a newline (still being
  written), a gzip stream that ends early;
- *set aside*, with its reason (recorded in the manifest with its hash when it has one, and
  looked at again on every run, so it is taken once its content changes): an empty file, an
  unreadable one, a Parquet file without its footer (truncated or still being written);
- *pending*: every other file whose content was never ingested (one per distinct content).

A file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat``, so a symbolic
link or a FIFO put in a file's place after the ``lstat`` is still never read; its hash and
its completeness come from that one open file. :meth:`Inbox.unchanged` tells whether the name
still holds that same file (device, inode, size, modification time) before and after ingest.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import stat
import time
import zlib
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from usage_features.adapters.files import atomic_write
from usage_features.ingestion.readers import is_event_name, is_parquet

_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class InboxFile:
    path: Path
    digest: str
    #: (device, inode, size, modification time in ns) when it was checked.
    identity: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def name(self) -> str:
        return shown(self.path.name)


@dataclass(frozen=True)
class Skipped:
    """An inbox entry not taken this run: its (printable) name, why, and the file when it
    was read (a set-aside file with a hash is recorded in the manifest)."""

    name: str
    reason: str
    item: InboxFile | None = None


@dataclass
class InboxScan:
    pending: list[InboxFile] = field(default_factory=list)
    waiting: list[Skipped] = field(default_factory=list)
    set_aside: list[Skipped] = field(default_factory=list)
    refused: list[Skipped] = field(default_factory=list)


def content_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def shown(name: str) -> str:
    """``name`` printable as it is: control characters and undecodable bytes as escapes
    (a file name can hold a terminal's escape sequences)."""
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in raw)


class Inbox:
    """The event files of ``folder`` and the manifest of those ingested (``manifest``)."""

    def __init__(self, folder: Path, manifest: Path) -> None:
        self.folder = Path(folder)
        self.manifest = Path(manifest)

    def _entries(self) -> dict[str, dict]:
        return json.loads(self.manifest.read_text()) if self.manifest.exists() else {}

    def ingested(self) -> dict[str, dict]:
        """The manifest's ingested contents, by hash."""
        return {k: v for k, v in self._entries().items() if "set_aside_at" not in v}

    def set_aside_files(self) -> dict[str, dict]:
        """The manifest's set-aside contents, by hash (each with its ``reason``)."""
        return {k: v for k, v in self._entries().items() if "set_aside_at" in v}

    def pending(self) -> list[InboxFile]:
        """Files whose content was never ingested and that are complete, in name order."""
        return self.scan().pending

    def scan(self, settle_seconds: float = 0.0, clock: Callable[[], float] = time.time
             ) -> InboxScan:
        """Every event-file entry of the folder, sorted into pending, waiting, set aside and
        refused (see the module's docstring). ``settle_seconds``: a file modified less than
        that long ago (by ``clock``, the wall clock) waits."""
        done = self.ingested()
        scan = InboxScan()
        if not self.folder.is_dir():
            return scan
        taken: set[str] = set()
        for name in sorted(os.listdir(self.folder)):
            if name.startswith(".") or not is_event_name(name):
                continue
            path = self.folder / name
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue  # removed since listed
            refusal = _refusal(info.st_mode)
            if refusal:
                scan.refused.append(Skipped(shown(name), refusal))
                continue
            age = clock() - info.st_mtime
            if settle_seconds and age < settle_seconds:
                scan.waiting.append(Skipped(shown(name), (
                    f"modified {max(age, 0):.0f} s ago, less than the settle time "
                    f"(--settle-seconds {settle_seconds:g}): still being written?")))
                continue
            checked = _check(path, done)
            if checked is None:
                continue  # removed since listed, or already ingested (under any name)
            kind, reason, item = checked
            if kind == "refused":
                scan.refused.append(Skipped(shown(name), reason))
            elif kind == "waiting":
                scan.waiting.append(Skipped(shown(name), reason))
            elif kind == "set aside":
                scan.set_aside.append(Skipped(shown(name), reason, item))
            elif item is not None and item.digest not in taken:
                taken.add(item.digest)
                scan.pending.append(item)
        return scan

    @staticmethod
    def unchanged(item: InboxFile) -> bool:
        """Whether ``item``'s name still holds the regular file that was checked, unchanged."""
        try:
            info = os.lstat(item.path)
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and _identity(info) == item.identity

    def record(self, item: InboxFile, when: datetime, summary: dict) -> None:
        """Note ``item`` as ingested (atomically: a crash leaves the old manifest whole)."""
        done = self._entries()
        done[item.digest] = {"file": item.path.name, "ingested_at": when.isoformat(), **summary}
        self._write(done)

    def set_aside(self, item: InboxFile, when: datetime, reason: str) -> None:
        """Note ``item``'s content as set aside for ``reason`` (kept when already noted so)."""
        entries = self._entries()
        noted = entries.get(item.digest)
        if noted and "ingested_at" in noted:
            return
        if noted and noted.get("reason") == reason and noted.get("file") == item.path.name:
            return
        entries[item.digest] = {"file": item.path.name, "set_aside_at": when.isoformat(),
                                "reason": reason}
        self._write(entries)

    def _write(self, entries: dict[str, dict]) -> None:
        self.manifest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.manifest, json.dumps(entries, indent=1, sort_keys=True))


def _refusal(mode: int) -> str | None:
    """Why an entry of this ``lstat`` mode is refused (None: a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link: refused, never followed (deliver the file itself)"
    if stat.S_ISDIR(mode):
        return "a directory: refused (the inbox is not read recursively)"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO): refused, never opened"
    if stat.S_ISSOCK(mode):
        return "a socket: refused, never opened"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device: refused, never opened"
    return "not a regular file: refused, never opened"


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _check(path: Path, done: Container[str] = ()) -> tuple[str, str, InboxFile | None] | None:
    """(kind, reason, file) of one regular-looking entry: ``pending``, ``waiting``, ``set
    aside`` or ``refused`` (swapped for something else since the ``lstat``); None when gone
    or when its content's hash is in ``done``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "refused", _refusal(stat.S_IFLNK), None
        return "set aside", f"unreadable: {exc.strerror}", None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        refusal = _refusal(info.st_mode)
        if refusal:
            return "refused", refusal, None
        try:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if digest in done:
                return None
            item = InboxFile(path, digest, _identity(info))
            verdict = _completeness(handle, path.name, info.st_size)
        except OSError as exc:
            return "set aside", f"unreadable: {exc.strerror or exc}", None
    if verdict is None:
        return "pending", "", item
    return (*verdict, item)


def _completeness(handle: BinaryIO, name: str, size: int) -> tuple[str, str] | None:
    """Why the open file is not complete: (``waiting`` or ``set aside``, reason); None when
    it is."""
    fd = handle.fileno()
    if size == 0:
        return "set aside", "empty (0 bytes)"
    if is_parquet(Path(name)):
        if size < 12 or os.pread(fd, 4, 0) != _PARQUET_MAGIC:
            return "set aside", "not a Parquet file: no PAR1 magic at its start"
        if os.pread(fd, 4, size - 4) != _PARQUET_MAGIC:
            return "set aside", ("incomplete or corrupt Parquet: no footer (PAR1 magic) at its "
                                 "end; truncated, or still being written")
        return None
    if name.lower().endswith(".gz"):
        handle.seek(0)
        last, total = b"", 0
        try:
            with gzip.GzipFile(fileobj=handle) as stream:
                while chunk := stream.read(1 << 20):
                    last, total = chunk[-1:], total + len(chunk)
        except EOFError:
            return "waiting", "incomplete: its gzip stream ends early (still being written?)"
        except (gzip.BadGzipFile, zlib.error) as exc:
            return "set aside", f"not a readable gzip file ({exc})"
        if total == 0:
            return "set aside", "empty (no content once decompressed)"
        if last != b"\n":
            return "waiting", ("incomplete: its content does not end with a newline (still "
                               "being written?)")
        return None
    if os.pread(fd, 1, size - 1) != b"\n":
        return "waiting", "incomplete: does not end with a newline (still being written?)"
    return None

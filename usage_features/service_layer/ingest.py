"""Ingest event files into the repo's event log, and the rule for when rejections are too many.

Also the inbox form the daily job uses: every complete file of a folder whose content was never
ingested, each recorded once ingested; a file that cannot be read is set aside while the others
go on, entries that are not regular files are refused unread (``ingestion.inbox``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from usage_features.config import RepoPaths
from usage_features.ingestion import IngestSummary, ingest_files
from usage_features.ingestion.inbox import Inbox, InboxFile
from usage_features.ingestion.readers import InputError
from usage_features.ingestion.text_formats import MalformedFileError


def ingest(files: Sequence[Path], paths: RepoPaths, columns: Mapping[str, str] | None = None,
           now: datetime | None = None, on_rows: Callable[[int], None] | None = None
           ) -> IngestSummary:
    """Validate ``files`` and append their valid new events to the log (see
    :func:`usage_features.ingestion.ingest_files`)."""
    return ingest_files(files, paths, now=now, on_rows=on_rows, columns=columns)


def too_many_rejected(summary: IngestSummary, max_fraction: float | None) -> str | None:
    """Why the rejections make the ingest a failure (None: they do not): every row read was
    rejected, or more than ``max_fraction`` of them. The valid rows are committed either way."""
    if summary.read and summary.rejected == summary.read:
        return f"every row read ({summary.read:,}) was rejected; see the reasons above"
    share = summary.rejected / summary.read if summary.read else 0.0
    if max_fraction is not None and share > max_fraction:
        return (f"{summary.rejected:,} of {summary.read:,} rows ({share:.1%}) rejected, more "
                f"than --max-rejected-fraction {max_fraction:g}; the {summary.accepted:,} valid "
                "new row(s) were committed")
    return None


@dataclass
class InboxSummary:
    """What one pass over the inbox did. ``alarms``: what needs someone (files set aside or
    refused, rejected rows, a file changed while it was ingested); waiting files are not."""

    files: list[str] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    quarantine_files: list[str] = field(default_factory=list)
    #: Name -> why, for files not taken this run.
    waiting: dict[str, str] = field(default_factory=dict)
    set_aside: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    alarms: list[str] = field(default_factory=list)


def ingest_inbox(paths: RepoPaths, inbox: Path | None, now: datetime,
                 settle_seconds: float = 0.0) -> InboxSummary:
    """Ingest each complete file of ``inbox`` (default ``DIR/inbox``) whose content is new, one
    at a time, recording each once its events are committed (a re-run takes only the rest).

    Unlike ``ingest``, one bad file does not stop the others: a file that cannot be read at
    all is set aside with its reason (and tried again on the next run); entries that are not
    regular files are refused unread; incomplete files wait (see :class:`Inbox`)."""
    box = Inbox(inbox or paths.repo / "inbox", paths.data / "inbox.json")
    scan = box.scan(settle_seconds)
    summary = InboxSummary()
    summary.waiting = {s.name: s.reason for s in scan.waiting}
    for entry in scan.refused:
        summary.refused[entry.name] = entry.reason
        summary.alarms.append(f"inbox file {entry.name}: {entry.reason}")
    for entry in scan.set_aside:
        _set_aside(box, summary, entry.name, entry.item, entry.reason, now)
    for item in scan.pending:
        if not box.unchanged(item):
            summary.waiting[item.name] = "changed since it was checked: taken on a later run"
            continue
        try:
            result = ingest_files([item.path], paths, now=now)
        except (InputError, MalformedFileError) as exc:
            _set_aside(box, summary, item.name, item, _without_path(str(exc), item.path), now)
            continue
        summary.files.append(item.name)
        summary.accepted += result.accepted
        summary.rejected += result.rejected
        for reason, n in result.rejected_by_reason.items():
            summary.rejected_by_reason[reason] = summary.rejected_by_reason.get(reason, 0) + n
        summary.quarantine_files += result.quarantine_files
        if result.rejected:
            summary.alarms.append(_rejected_alarm(item.name, result))
        if box.unchanged(item):
            box.record(item, now, {k: getattr(result, k)
                                   for k in ("read", "accepted", "rejected", "duplicates")})
        else:  # not recorded: taken again, whole, on the next run
            summary.alarms.append(
                f"inbox file {item.name} changed while it was being ingested: the rows read "
                "were committed, and it is taken again on the next run; deliver files by "
                "renaming them into the inbox when complete")
    return summary


def _set_aside(box: Inbox, summary: InboxSummary, name: str, item: InboxFile | None,
               reason: str, now: datetime) -> None:
    if item is not None:
        box.set_aside(item, now, reason)
    summary.set_aside[name] = reason
    summary.alarms.append(f"inbox file {name} set aside: {reason}; the other files went on, "
                          "and it is tried again on every run (fix or re-deliver it, or "
                          "remove it)")


def _rejected_alarm(name: str, result: IngestSummary) -> str:
    reasons = ", ".join(f"{r} {n:,}" for r, n in result.rejected_by_reason.items())
    alarm = (f"inbox file {name}: {result.rejected:,} of {result.read:,} row(s) rejected "
             f"({reasons})")
    if "conflicting_event_id" in result.rejected_by_reason:
        alarm += ("; conflicting_event_id: events already stored with other values (a "
                  "re-delivery with changed values?), the stored values are kept")
    where = ", ".join(result.quarantine_files)
    return alarm + (f"; rows and reasons in {where}" if where else "")


def _without_path(message: str, path: Path) -> str:
    """An input error's message without the file's path in front (the name is beside it)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message

"""Ingest event files into the repo's event log, and the rule for when rejections are too many.

Also the inbox form the daily job uses: every file of a folder whose content was never
ingested, each recorded once ingested (``ingestion.inbox``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from usage_features.config import RepoPaths
from usage_features.ingestion import IngestSummary, ingest_files
from usage_features.ingestion.inbox import Inbox


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
    files: list[str] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0


def ingest_inbox(paths: RepoPaths, inbox: Path | None, now: datetime) -> InboxSummary:
    """Ingest each file of ``inbox`` (default ``DIR/inbox``) whose content is new, one at a
    time, recording each once its events are committed (a re-run takes only the rest)."""
    pending = Inbox(inbox or paths.repo / "inbox", paths.data / "inbox.json")
    summary = InboxSummary()
    for item in pending.pending():
        result = ingest_files([item.path], paths, now=now)
        pending.record(item, now, {k: getattr(result, k)
                                   for k in ("read", "accepted", "rejected", "duplicates")})
        summary.files.append(item.path.name)
        summary.accepted += result.accepted
        summary.rejected += result.rejected
    return summary

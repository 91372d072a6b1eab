"""An inbox folder of event files, each ingested once, recognised by its content.

The manifest ``DIR/data/inbox.json`` maps the SHA-256 of every file ingested from an inbox to
its name, when and what it gave. A file is pending while its content is not in the manifest: a
file re-delivered under another name is skipped, one re-written in place with new rows is
ingested (and its old rows are duplicates, dropped). The manifest is updated after each file's
ingest commits, so a run killed in between ingests that file again next time: the event log's
de-duplication makes that add nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from usage_features.adapters.files import atomic_write
from usage_features.ingestion.readers import is_event_file


@dataclass(frozen=True)
class InboxFile:
    path: Path
    digest: str


def content_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class Inbox:
    """The event files of ``folder`` and the manifest of those ingested (``manifest``)."""

    def __init__(self, folder: Path, manifest: Path) -> None:
        self.folder = Path(folder)
        self.manifest = Path(manifest)

    def ingested(self) -> dict[str, dict]:
        return json.loads(self.manifest.read_text()) if self.manifest.exists() else {}

    def pending(self) -> list[InboxFile]:
        """Files whose content was never ingested, in name order (one per distinct content)."""
        done = self.ingested()
        found: dict[str, InboxFile] = {}
        for path in sorted(self.folder.iterdir()) if self.folder.is_dir() else []:
            if is_event_file(path):
                digest = content_digest(path)
                if digest not in done:
                    found.setdefault(digest, InboxFile(path, digest))
        return list(found.values())

    def record(self, item: InboxFile, when: datetime, summary: dict) -> None:
        """Note ``item`` as ingested (atomically: a crash leaves the old manifest whole)."""
        done = self.ingested()
        done[item.digest] = {"file": item.path.name, "ingested_at": when.isoformat(), **summary}
        self.manifest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.manifest, json.dumps(done, indent=1, sort_keys=True))

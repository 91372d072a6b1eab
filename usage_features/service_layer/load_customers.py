"""Make a validated customers file the repo's customers table (signups, churns, plans)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from usage_features.adapters.stored_files import stored_files
from usage_features.config import RepoPaths
from usage_features.ingestion.customers import load_customers as replace_customers_table


@stored_files
def load_customers(path: Path, paths: RepoPaths, columns: Mapping[str, str] | None = None,
                   now: datetime | None = None) -> int:
    """Validate ``path`` (every row, or nothing changes) and make it the repo's customers
    table; returns its row count. ``columns`` defaults to the repo's stored mapping."""
    return replace_customers_table(Path(path), paths, columns=columns, now=now)

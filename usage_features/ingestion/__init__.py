"""Ingestion: raw usage-event files in, a validated, deduplicated event log out."""

from usage_features.ingestion.ingest import IngestSummary, ingest_files
from usage_features.ingestion.validation import REASONS

__all__ = ["REASONS", "IngestSummary", "ingest_files"]

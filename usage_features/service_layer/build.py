"""Bring the feature tables up to date with the event log, then register the definitions
with Feast (``feast apply``), so the feature service always describes the tables."""

from __future__ import annotations

from collections.abc import Callable

from usage_features.adapters.stored_files import stored_files
from usage_features.config import RepoPaths
from usage_features.features.build import BuildSummary, build_features
from usage_features.features.store import DEFAULT_CONFIG, apply_definitions


@stored_files
def build(paths: RepoPaths, config: str = DEFAULT_CONFIG, engine: str = "duckdb",
          spark_master: str | None = None,
          progress: Callable[[str], None] | None = None) -> BuildSummary:
    """Incremental build (``engine`` duckdb or spark), then ``feast apply`` with ``config``."""
    say = progress or (lambda _: None)
    summary = build_features(paths, on_step=say, engine=engine, spark_master=spark_master)
    say(f"feast apply ({config})")
    apply_definitions(paths.repo, config)
    return summary

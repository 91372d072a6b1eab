"""Bring the feature tables up to date with the event log, then register the definitions
with Feast (``feast apply``) when they changed, so the feature service always describes the
tables.

Whether they changed is decided by a digest of what ``feast apply`` registers: the repo's
definition files and Feast config, the event vocabulary and the feature spec built from it
(contents, not file times). ``feast apply`` runs when the digest differs from the one recorded
at the last apply with that config, or when the config's local registry file is missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import yaml

from usage_features.adapters.stored_files import stored_files
from usage_features.config import RepoPaths
from usage_features.features.build import BuildSummary, build_features
from usage_features.features.spec import feature_spec
from usage_features.features.state import load_state, save_state
from usage_features.features.store import DEFAULT_CONFIG, apply_definitions
from usage_features.ingestion.settings import load_vocabulary


@stored_files
def build(paths: RepoPaths, config: str = DEFAULT_CONFIG, engine: str = "duckdb",
          spark_master: str | None = None,
          progress: Callable[[str], None] | None = None,
          memory_limit: int | None = None) -> BuildSummary:
    """Incremental build (``engine`` duckdb or spark; DuckDB in ``memory_limit`` bytes), then
    ``feast apply`` with ``config`` if the definitions changed (``summary.definitions_applied``
    says whether it ran)."""
    say = progress or (lambda _: None)
    summary = build_features(paths, on_step=say, engine=engine, spark_master=spark_master,
                             memory_limit=memory_limit)
    digest = definitions_digest(paths, config)
    state = load_state(paths)
    applied = state.get("applied_definitions", {})
    if applied.get(config) != digest or not _registry_present(paths.repo, config):
        say(f"feast apply ({config})")
        apply_definitions(paths.repo, config)
        state = load_state(paths)  # (the build and the apply may have written it)
        state.setdefault("applied_definitions", {})[config] = digest
        save_state(paths, state)
        summary.definitions_applied = True
    return summary


def definitions_digest(paths: RepoPaths, config: str = DEFAULT_CONFIG) -> str:
    """SHA-256 of what ``feast apply`` registers from the repo with ``config``."""
    digest = hashlib.sha256()
    for path in [*sorted(paths.repo.glob("*.py")), paths.repo / config]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    vocabulary = load_vocabulary(paths.repo)
    spec = feature_spec(vocabulary)
    digest.update(vocabulary.sha256.encode())
    digest.update(repr((spec.stored, spec.served, spec.request_time)).encode())
    return digest.hexdigest()


def _registry_present(repo: Path, config: str) -> bool:
    """Whether the config's registry exists (a registry not in a local file: assumed)."""
    registry = yaml.safe_load((repo / config).read_text()).get("registry")
    path = registry.get("path") if isinstance(registry, dict) else registry
    if not isinstance(path, str) or "://" in path:
        return True
    return (Path(path) if Path(path).is_absolute() else repo / path).exists()

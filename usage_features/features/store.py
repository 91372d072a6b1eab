"""Open a feature repo's Feast store, register its definitions (``feast apply``), check its
online tables.

A copied repo's registries are re-pointed at the copy first (see
:mod:`usage_features.adapters.feast_registry`): building or materializing a copy never touches
the original.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from pathlib import Path

from usage_features.adapters.feast_registry import repoint_copied_registries

SERVICE_NAME = "churn_model_v1"


DEFAULT_CONFIG = "feature_store.yaml"


def open_store(repo: Path, config: str = DEFAULT_CONFIG):
    """The ``FeatureStore`` of the feature repo at ``repo`` (``config``: its YAML's name)."""
    from feast import FeatureStore

    repo = Path(repo).resolve()
    repoint_copied_registries(repo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return FeatureStore(repo_path=str(repo), fs_yaml_file=repo / config)


def apply_definitions(repo: Path, config: str = DEFAULT_CONFIG) -> str:
    """Run ``feast apply`` on ``repo`` in process; returns what it printed."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    repo = Path(repo).resolve()
    repoint_copied_registries(repo)
    output = io.StringIO()
    # As the feast CLI does: the repo's modules are imported by name from the repo directory.
    # Forget any module of that name from another repo imported earlier in this process.
    for module in repo.glob("*.py"):
        sys.modules.pop(module.stem, None)
    sys.path.insert(0, str(repo))
    cwd = os.getcwd()  # apply_total changes the working directory and leaves it changed
    # The definitions pick their source type by the config being applied, as under the CLI.
    previous = os.environ.get("FEAST_FS_YAML_FILE_PATH")
    os.environ["FEAST_FS_YAML_FILE_PATH"] = str(repo / config)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(output):
            warnings.simplefilter("ignore", RuntimeWarning)
            logging.getLogger("feast").setLevel(logging.ERROR)
            repo_config = load_repo_config(repo, repo / config)
            apply_total(repo_config, repo, skip_source_validation=False)
    finally:
        sys.path.remove(str(repo))
        os.chdir(cwd)
        if previous is None:
            os.environ.pop("FEAST_FS_YAML_FILE_PATH")
        else:
            os.environ["FEAST_FS_YAML_FILE_PATH"] = previous
    return output.getvalue()


class OnlineStoreNotMaterialized(RuntimeError):
    """A feature view's online table is missing: never materialized, or dropped."""


def not_materialized(repo, views: list[str], why: str) -> OnlineStoreNotMaterialized:
    """The error for ``views`` of ``repo`` (``why``: "was never materialized"...)."""
    return OnlineStoreNotMaterialized(
        f"no online features: feature view {', '.join(views)} {why}; run "
        f"`usage-features materialize --repo {repo}` (with the --config you use, if any)")


def check_online_tables(store, views) -> None:
    """Raise :class:`OnlineStoreNotMaterialized` unless every view in ``views`` has been
    materialized (as the registry records) and, on SQLite, still has its online table."""
    never = [v.name for v in views if not v.materialization_intervals]
    if never:
        raise not_materialized(store.repo_path, never, "was never materialized")
    missing = missing_online_tables(store, views)
    if missing:
        raise not_materialized(store.repo_path, missing, "has no online table (dropped?)")


def missing_online_tables(store, views) -> list[str]:
    """Names of ``views`` whose table is absent from a SQLite online store (other stores have
    no tables to lose: an empty list)."""
    from feast.infra.online_stores.sqlite import SqliteOnlineStore, _table_id

    online_store, config = store._get_provider().online_store, store.config
    if type(online_store) is not SqliteOnlineStore:
        return []
    versioning = config.registry.enable_online_feature_view_versioning
    tables = {_table_id(config.project, view, versioning): view.name for view in views}
    found = {name for (name,) in online_store._get_conn(config).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    return [name for table, name in tables.items() if table not in found]


def create_online_tables(store, views) -> None:
    """Create the online tables of ``views`` where they are missing (the provider's own
    ``update_infra``, as ``feast apply`` runs it; existing tables are kept as they are)."""
    entities = [store.get_entity(name) for view in views for name in view.entities]
    store._get_provider().update_infra(
        project=store.project, tables_to_delete=[], tables_to_keep=list(views),
        entities_to_delete=[], entities_to_keep=entities, partial=True)

"""Open a feature repo's Feast store, register its definitions (``feast apply``), check its
online tables.

A copied repo's registries are re-pointed at the copy first (see
:mod:`usage_features.adapters.feast.registry`): building or materializing a copy never touches
the original. The online tables are looked at through
:mod:`usage_features.adapters.feast.online`. ``feast apply`` in process runs inside
:func:`as_under_the_feast_cli`: the one place the package changes the process's state for Feast
(``sys.path``, ``FEAST_FS_YAML_FILE_PATH``, the working directory, Feast's log level), and
restores it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from usage_features.adapters.feast.online import (
    OnlineStoreNotMaterialized,
    missing_online_tables,
    not_materialized,
)
from usage_features.adapters.feast.registry import repoint_copied_registries

DEFAULT_CONFIG = "feature_store.yaml"


def open_store(repo: Path, config: str = DEFAULT_CONFIG):
    """The ``FeatureStore`` of the feature repo at ``repo`` (``config``: its YAML's name)."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast import FeatureStore

    repo = Path(repo).resolve()
    repoint_copied_registries(repo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return FeatureStore(repo_path=str(repo), fs_yaml_file=repo / config)


class DefinitionsError(ValueError):
    """The feature repo's definitions cannot be loaded by this version of the package."""


def apply_definitions(repo: Path, config: str = DEFAULT_CONFIG) -> str:
    """Run ``feast apply`` on ``repo`` in process; returns what it printed.

    A definitions file that imports a name this version does not have (a repo made by another
    version) raises :class:`DefinitionsError`, naming the fix."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    repo = Path(repo).resolve()
    repoint_copied_registries(repo)
    output = io.StringIO()
    with as_under_the_feast_cli(repo, config), contextlib.redirect_stdout(output):
        repo_config = load_repo_config(repo, repo / config)
        try:
            apply_total(repo_config, repo, skip_source_validation=False)
        except ImportError as exc:
            raise DefinitionsError(
                f"the definitions in {repo} could not be loaded ({exc}): they were made for "
                "another version of usage-features; copy churn_features.py from this version's "
                "feature_repo/ into the repo (the data is kept), then build again") from exc
    return output.getvalue()


@contextlib.contextmanager
def as_under_the_feast_cli(repo: Path, config: str) -> Iterator[None]:
    """The process as ``feast apply`` in ``repo`` expects it, restored on leaving.

    As the feast CLI does: the repo's modules are imported by name from the repo directory
    (``sys.path``; any module of that name from another repo imported earlier in this process
    is forgotten), and the definitions pick their source type by the config being applied
    (``FEAST_FS_YAML_FILE_PATH``). ``apply_total`` changes the working directory and leaves it
    changed; Feast's logger is quiet but for errors, and its RuntimeWarnings are ignored.
    """
    for module in repo.glob("*.py"):
        sys.modules.pop(module.stem, None)
    logger = logging.getLogger("feast")
    cwd, level = os.getcwd(), logger.level
    previous = os.environ.get("FEAST_FS_YAML_FILE_PATH")
    sys.path.insert(0, str(repo))
    os.environ["FEAST_FS_YAML_FILE_PATH"] = str(repo / config)
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        logger.setLevel(level)
        sys.path.remove(str(repo))
        os.chdir(cwd)
        if previous is None:
            os.environ.pop("FEAST_FS_YAML_FILE_PATH", None)
        else:
            os.environ["FEAST_FS_YAML_FILE_PATH"] = previous


def check_online_tables(store, views) -> None:
    """Raise :class:`OnlineStoreNotMaterialized` unless every view in ``views`` has been
    materialized (as the registry records) and, on SQLite, still has its online table."""
    never = [v.name for v in views if not v.materialization_intervals]
    if never:
        raise not_materialized(store.repo_path, never, "was never materialized")
    missing = missing_online_tables(store, views)
    if missing:
        raise not_materialized(store.repo_path, missing, "has no online table (dropped?)")


__all__ = ["DEFAULT_CONFIG", "OnlineStoreNotMaterialized", "apply_definitions",
           "as_under_the_feast_cli", "check_online_tables", "not_materialized", "open_store"]

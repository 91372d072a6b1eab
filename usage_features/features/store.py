"""Open a feature repo's Feast store, and register its definitions (``feast apply``)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from pathlib import Path

SERVICE_NAME = "churn_model_v1"


DEFAULT_CONFIG = "feature_store.yaml"


def open_store(repo: Path, config: str = DEFAULT_CONFIG):
    """The ``FeatureStore`` of the feature repo at ``repo`` (``config``: its YAML's name)."""
    from feast import FeatureStore

    repo = Path(repo).resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return FeatureStore(repo_path=str(repo), fs_yaml_file=repo / config)


def apply_definitions(repo: Path, config: str = DEFAULT_CONFIG) -> str:
    """Run ``feast apply`` on ``repo`` in process; returns what it printed."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    repo = Path(repo).resolve()
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

"""Shared fixtures: fresh copies of the feature repo, populated through the real commands."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from usage_features.config import RepoPaths

# As the console script sets it (usage_features.cli.main): the CLI tests call the app in this
# process, and scikit-learn's spinning OpenMP threads would starve DuckDB's on a small machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FEATURE_REPO = Path(__file__).resolve().parents[1] / "feature_repo"


def copy_feature_repo(target: Path) -> Path:
    """The feature repo's definitions (not its data) in ``target``: an independent project."""
    target.mkdir(parents=True, exist_ok=True)
    for item in FEATURE_REPO.iterdir():
        if item.name != "data" and item.is_file():
            shutil.copy(item, target / item.name)
    return target


def populate(repo: Path, events: pd.DataFrame, customers: pd.DataFrame | None = None) -> None:
    """Ingest ``events`` (and load ``customers``) into ``repo``, then build and apply."""
    from usage_features.features.build import build_features
    from usage_features.features.store import apply_definitions
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers

    paths = RepoPaths(repo)
    source = repo / "incoming.parquet"
    events.to_parquet(source, index=False)
    summary = ingest_files([source], paths)
    assert summary.rejected == 0, summary
    if customers is not None:
        customers.to_parquet(repo / "customers.parquet")
        load_customers(repo / "customers.parquet", paths)
    build_features(paths)
    apply_definitions(repo)


@pytest.fixture
def feature_repo_copy(tmp_path) -> Path:
    return copy_feature_repo(tmp_path / "feature_repo")


def services_required() -> bool:
    """In CI with USAGE_FEATURES_REQUIRE_SERVICES=1, a missing server fails instead of skipping."""
    import os

    return (os.environ.get("CI") == "true"
            and os.environ.get("USAGE_FEATURES_REQUIRE_SERVICES") == "1")


def require_service(host: str, port: int, name: str, hint: str) -> None:
    """Skip, saying why, when the server is not reachable (fail where it is required)."""
    import socket

    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as exc:
        message = f"{name} not reachable at {host}:{port} ({exc}); {hint}"
        if services_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def start_http_server(command: list[str], cwd: Path | None = None, env: dict | None = None,
                      timeout: float = 90):
    """Run ``command`` with ``{port}`` filled with a free loopback port until ``/health``
    answers 200; returns the process and its URL (fails with the server's output if not)."""
    import socket
    import subprocess
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([part.format(port=port) for part in command], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    pytest.fail(f"{command[0]} did not start: {process.stdout.read().decode()[-2000:]}")

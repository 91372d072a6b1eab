"""Paths are never SQL: a repo path with quotes, spaces, SQL or glob characters is just a path.

Before the fix a `'` in `--repo` broke every command, a repo named like the SQL below wrote
`PWNED.csv`, and a repo named `repo[1]` (or `*`) read another directory's event log and tables.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from tests.factories import T0, churn_dataset, random_events
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.features.retrieval import historical_features
from usage_features.features.store import open_store

runner = CliRunner()

HOSTILE = "it's a repo' (FORMAT csv); COPY (SELECT 42 AS pwned) TO 'PWNED.csv'; --"


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def pwned_files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.name.upper().startswith("PWNED")]


def test_the_whole_flow_works_in_a_repo_named_like_sql_and_writes_nothing_else(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a relative COPY ... TO 'PWNED.csv' would land
    repo = copy_feature_repo(tmp_path / HOSTILE)
    events, customers = churn_dataset(seed=8, customers=40)
    events.to_parquet(tmp_path / "events.parquet", index=False)
    customers.to_parquet(tmp_path / "customers.parquet", index=False)
    now = datetime.now(UTC).replace(microsecond=0)

    ingested = json.loads(invoke("ingest", str(tmp_path / "events.parquet"), "--repo",
                                 str(repo), "--json"))
    assert ingested["accepted"] == len(events)
    invoke("load-customers", str(tmp_path / "customers.parquet"), "--repo", str(repo))
    built = json.loads(invoke("build", "--repo", str(repo), "--json"))
    assert built["customers"] == events.customer_id.nunique()
    trained = json.loads(invoke("train", "--repo", str(repo), "--json"))
    assert Path(trained["model_path"]).is_relative_to(repo)
    invoke("materialize", "--repo", str(repo), "--end", now.strftime("%Y-%m-%dT%H:%M:%S"))
    live = set(customers.customer_id[customers.churned_at.isna()])
    customer = events.customer_id[events.customer_id.isin(live)].iloc[-1]
    scored = [json.loads(line) for line in invoke(
        "score", customer, "--repo", str(repo), "--json",
        "--as-of", now.strftime("%Y-%m-%dT%H:%M:%S")).splitlines()]
    assert scored[0]["status"] == "active" and 0 <= scored[0]["churn_probability"] <= 1
    shown = invoke("events", customer, "--repo", str(repo))
    assert f"{(events.customer_id == customer).sum():,} events" in shown

    assert pwned_files(tmp_path, Path.cwd()) == []


@pytest.mark.parametrize(("name", "sibling"), [("repo[1]", "repo1"), ("*", "other"),
                                           ("r?po", "repo")])
def test_glob_characters_in_the_repo_path_read_only_that_repo(tmp_path, name, sibling):
    """The sibling matches ``name`` as a pattern; only ``name``'s own data may be read."""
    mine, theirs = copy_feature_repo(tmp_path / name), copy_feature_repo(tmp_path / sibling)
    for repo, customer, seed in ((theirs, "theirs", 1), (mine, "mine", 2)):
        events = random_events(seed, customers=3, days=60).assign(customer_id=customer)
        events.to_parquet(tmp_path / f"{customer}.parquet", index=False)
        invoke("ingest", str(tmp_path / f"{customer}.parquet"), "--repo", str(repo))
        invoke("build", "--repo", str(repo))

    assert "no events for customer 'theirs'" in runner.invoke(
        app, ["events", "theirs", "--repo", str(mine)]).output
    assert "mine:" in invoke("events", "mine", "--repo", str(mine))
    table = pd.read_parquet(RepoPaths(mine).customer_usage)
    assert set(table.customer_id) == {"mine"}
    at = pd.Timestamp(T0) + pd.Timedelta(days=61)  # both logs have events in the 90 days
    features = historical_features(open_store(mine), pd.DataFrame(
        {"customer_id": ["mine", "theirs"], "event_timestamp": [at, at]}))
    mine_count, theirs_count = features.event_count_90d.tolist()
    assert mine_count > 0 and theirs_count == 0  # "theirs" is unknown here

"""A copy of a built feature repo is an independent project; a missing online table says what
to do.

Feast stores the online store's absolute path in the registry: before the fix, building a copy
(`cp -a repo copy; usage-features build --repo copy`, or `feast apply` in the copy) dropped the
original's online tables, and scoring the original failed with a sqlite traceback.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo, populate
from tests.factories import churn_dataset
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.features.store import OnlineStoreNotMaterialized
from usage_features.service_layer.bootstrap import bootstrap
from usage_features.service_layer.materialize import materialize
from usage_features.service_layer.train import TrainConfig, train

runner = CliRunner()
FEAST = str(Path(sys.executable).parent / "feast")
ONLINE_TABLE = "usage_features_customer_usage"


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """Repo A: built, trained, materialized; its scores as of ``now``."""
    work = tmp_path_factory.mktemp("copies")
    repo = copy_feature_repo(work / "A")
    events, customers = churn_dataset(seed=31, customers=30)
    populate(repo, events, customers)
    train(TrainConfig(repo=repo, importance_repeats=1))
    now = datetime.now(UTC)
    materialize(repo, end=now)
    ids = customers.customer_id.tolist()
    return work, repo, ids, now, scores(repo, ids, now)


def scores(repo: Path, ids: list[str], now: datetime) -> list[dict]:
    return [s.to_dict() for s in bootstrap(repo).scorer.score(ids, now)]


def cp_a(source: Path, target: Path) -> Path:
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    return target


def online_tables(repo: Path) -> set[str]:
    with sqlite3.connect(RepoPaths(repo).data / "online_store.db") as con:
        return {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def invoke(*args: str):
    return runner.invoke(app, list(args))


class TestACopyIsIndependent:
    def test_building_and_materializing_a_copy_leaves_the_original_scoring_identically(
            self, original):
        work, a, ids, now, before = original
        b = cp_a(a, work / "B")
        # B diverges: new events for one customer, rebuilt (feast apply) and materialized
        day = pd.Timestamp(now).floor("D")
        pd.DataFrame({
            "event_id": [str(uuid.uuid4()) for _ in range(40)], "customer_id": ids[0],
            "timestamp": [day - pd.Timedelta(hours=h + 1) for h in range(40)],
            "event_type": "login", "feature_adoption_score": 0.9,
        }).to_parquet(work / "extra.parquet", index=False)
        assert invoke("ingest", str(work / "extra.parquet"), "--repo", str(b)).exit_code == 0
        assert invoke("build", "--repo", str(b)).exit_code == 0
        materialize(b, end=now)

        assert ONLINE_TABLE in online_tables(a)
        assert scores(a, ids, now) == before
        changed = scores(b, ids, now)
        assert changed[0] != before[0]  # B's materialize wrote into B's own store
        assert changed[1:] == before[1:]

    def test_feast_apply_in_a_copy_leaves_the_original_online_tables(self, original):
        work, a, ids, now, before = original
        c = cp_a(a, work / "C")
        done = subprocess.run([FEAST, "apply"], cwd=c, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        assert ONLINE_TABLE in online_tables(a) and ONLINE_TABLE in online_tables(c)
        assert scores(a, ids, now) == before
        assert scores(c, ids, now) == before

    def test_a_copy_still_builds_after_the_original_is_deleted(self, original, tmp_path):
        _work, a, ids, now, before = original
        middle = cp_a(a, tmp_path / "middle")
        d = cp_a(middle, tmp_path / "D")
        subprocess.run(["rm", "-rf", str(middle)], check=True)
        assert invoke("build", "--repo", str(d)).exit_code == 0
        materialize(d, end=now)
        assert scores(d, ids, now) == before
        assert not middle.exists()  # nothing was written back where the copy came from


class TestAMissingOnlineTable:
    @pytest.fixture
    def dropped(self, original, tmp_path):
        _, a, ids, now, before = original
        repo = cp_a(a, tmp_path / "dropped")
        with sqlite3.connect(RepoPaths(repo).data / "online_store.db") as con:
            con.execute(f"DROP TABLE {ONLINE_TABLE}")
        return repo, ids, now, before

    def test_score_says_to_run_materialize(self, dropped):
        repo, ids, *_ = dropped
        result = invoke("score", ids[0], "--repo", str(repo))
        assert result.exit_code == 2, result.output
        assert "customer_usage has no online table" in result.output
        assert "usage-features materialize" in result.output
        assert "Traceback" not in result.output and "sqlite3" not in result.output

    def test_serve_refuses_to_start_saying_to_run_materialize(self, dropped):
        repo, *_ = dropped
        result = invoke("serve", "--repo", str(repo), "--port", "1")
        assert result.exit_code == 2 and "usage-features materialize" in result.output

    def test_the_scorer_api_raises_a_clear_error_when_a_table_is_dropped_under_it(
            self, dropped):
        repo, ids, now, _ = dropped
        materialize(repo, end=now)
        scorer = bootstrap(repo).scorer
        with sqlite3.connect(RepoPaths(repo).data / "online_store.db") as con:
            con.execute(f"DROP TABLE {ONLINE_TABLE}")
        with pytest.raises(OnlineStoreNotMaterialized, match="usage-features materialize"):
            scorer.score(ids, now)

    def test_the_http_service_answers_503_saying_to_run_materialize(self, dropped):
        from fastapi.testclient import TestClient

        from usage_features.http.app import create_app

        repo, ids, now, _ = dropped
        materialize(repo, end=now)
        client = TestClient(create_app(bootstrap(repo).scorer))
        assert client.post("/score", json={"customer_ids": ids[:1]}).status_code == 200
        with sqlite3.connect(RepoPaths(repo).data / "online_store.db") as con:
            con.execute(f"DROP TABLE {ONLINE_TABLE}")
        response = client.post("/score", json={"customer_ids": ids[:1]})
        assert response.status_code == 503
        assert "usage-features materialize" in response.json()["detail"]

    def test_materialize_recreates_the_table_and_refills_it_from_the_start(self, dropped):
        repo, ids, now, before = dropped
        materialize(repo, end=now)  # the registry says "materialized up to now" already
        assert scores(repo, ids, now) == before

    def test_a_repo_never_materialized_says_to_run_materialize(self, original, tmp_path):
        _, a, *_ = original
        repo = copy_feature_repo(tmp_path / "fresh")
        events, customers = churn_dataset(seed=32, customers=5)
        populate(repo, events, customers)
        with pytest.raises(OnlineStoreNotMaterialized, match=r"never materialized.*materialize"):
            bootstrap(repo, model_path=RepoPaths(a).model).scorer  # noqa: B018 (it raises)

"""The scoring service end to end: a real uvicorn server on loopback, real HTTP requests."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

import httpx
import pytest

from usage_features.serving.materialize import materialize
from usage_features.training.train import TrainConfig, train
from tests.conftest import copy_feature_repo, populate, start_http_server
from tests.factories import churn_dataset

TOKEN = "test-token-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = copy_feature_repo(tmp_path_factory.mktemp("http") / "feature_repo")
    events, customers = churn_dataset(seed=8, customers=40)
    populate(repo, events, customers)
    customers.attrs["latest"] = events.timestamp.max()
    train(TrainConfig(repo=repo, importance_repeats=1))
    materialize(repo, end=datetime.now(timezone.utc))
    env = {**os.environ, "USAGE_FEATURES_API_TOKEN": TOKEN}
    process, url = start_http_server(
        [sys.executable, "-m", "usage_features", "serve", "--repo", str(repo),
         "--port", "{port}"], env=env)
    yield url, customers
    process.terminate()
    process.wait(timeout=10)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


class TestScoringService:
    def test_health_is_open_and_names_the_model(self, server):
        url, _ = server
        body = httpx.get(f"{url}/health").json()
        assert body["status"] == "ok" and body["model_version"].startswith("churn_model_v1-")

    def test_scores_many_customers_and_flags_an_unknown_one(self, server):
        url, customers = server
        ids = customers.customer_id[customers.churned_at.isna()].tolist()[:5] + ["nobody"]
        response = httpx.post(f"{url}/score", json={"customer_ids": ids}, headers=AUTH)
        assert response.status_code == 200
        scores = response.json()["scores"]
        assert [s["customer_id"] for s in scores] == ids
        assert all(0 <= s["churn_probability"] <= 1 for s in scores[:5])
        assert all(s["risk_band"] in {"low", "medium", "high"} for s in scores[:5])
        assert scores[-1]["churn_probability"] is None and "unknown customer" in scores[-1][
            "error"]
        assert [s["status"] for s in scores] == ["active"] * 5 + ["unknown"]

    def test_a_churned_customer_gets_a_status_and_no_probability(self, server):
        url, customers = server
        gone = customers[customers.churned_at <= datetime.now(timezone.utc)]
        response = httpx.post(f"{url}/score", json={"customer_ids": gone.customer_id.tolist()},
                              headers=AUTH)
        scores = response.json()["scores"]
        assert len(scores) == len(gone) > 0
        for score, churned_at in zip(scores, gone.churned_at):
            assert score["status"] == "churned" and score["churn_probability"] is None
            assert score["risk_band"] is None and score["reasons"] == []
            assert datetime.fromisoformat(score["churned_at"]) == churned_at

    def test_a_time_off_the_online_stores_day_is_refused_with_the_reason(self, server):
        url, customers = server
        response = httpx.post(f"{url}/score", headers=AUTH, json={
            "customer_ids": customers.customer_id.tolist()[:2],
            "as_of": "2025-01-01T12:00:00Z"})
        assert response.status_code == 422
        assert "not on the online store's day" in response.json()["detail"]

    def test_health_reports_the_freshness_of_the_data(self, server):
        url, _ = server
        fresh = httpx.get(f"{url}/health").json()["freshness"]
        for key in ("latest_event_at", "last_build_at", "materialized_through",
                    "last_materialize_at", "warnings"):
            assert key in fresh
        _, customers = server
        assert datetime.fromisoformat(fresh["latest_event_at"]) == customers.attrs["latest"]
        assert fresh["materialized_through"] is not None
        assert not any("never materialized" in w for w in fresh["warnings"])
        assert fresh["max_lag_hours"] == 36

    def test_without_the_token_scoring_is_refused(self, server):
        url, customers = server
        response = httpx.post(f"{url}/score", json={"customer_ids": ["x"]})
        assert response.status_code == 401
        wrong = httpx.post(f"{url}/score", json={"customer_ids": ["x"]},
                           headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401

    @pytest.mark.parametrize("body", [{}, {"customer_ids": []}, {"customer_ids": ["a"] * 1001},
                                      {"customer_ids": ["a"], "as_of": "2026-01-01T00:00:00"},
                                      {"customer_ids": "a"}])
    def test_invalid_requests_get_a_clear_422(self, server, body):
        url, _ = server
        response = httpx.post(f"{url}/score", json=body, headers=AUTH)
        assert response.status_code == 422
        assert response.json()["detail"]

    def test_model_metadata_and_openapi_docs_are_served(self, server):
        url, _ = server
        model = httpx.get(f"{url}/model", headers=AUTH).json()
        assert model["feature_service"] == "churn_model_v1" and len(model["features"]) > 20
        assert "/score" in httpx.get(f"{url}/openapi.json").json()["paths"]

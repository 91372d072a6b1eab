"""The scoring service end to end: a real uvicorn server on loopback, real HTTP requests."""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlparse

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo, populate, start_http_server
from tests.factories import churn_dataset
from usage_features.cli import app
from usage_features.config import SERVICE_NAME
from usage_features.features.retrieval import served_feature_names
from usage_features.service_layer.materialize import materialize
from usage_features.service_layer.train import TrainConfig, train

TOKEN = "test-token-123"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = copy_feature_repo(tmp_path_factory.mktemp("http") / "feature_repo")
    events, customers = churn_dataset(seed=8, customers=40)
    populate(repo, events, customers)
    customers.attrs["latest"] = events.timestamp.max()
    train(TrainConfig(repo=repo, importance_repeats=1))
    materialize(repo, end=datetime.now(UTC))
    env = {**os.environ, "USAGE_FEATURES_API_TOKEN": TOKEN, "USAGE_FEATURES_BODY_TIMEOUT": "1",
           "USAGE_FEATURES_HEADER_TIMEOUT": "1", "USAGE_FEATURES_KEEP_ALIVE_TIMEOUT": "1"}
    process, url = start_http_server(
        [sys.executable, "-m", "usage_features", "serve", "--repo", str(repo),
         "--port", "{port}"], env=env)
    customers.attrs["repo"] = repo
    yield url, customers
    process.terminate()
    process.wait(timeout=10)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


class TestScoringService:
    def test_health_is_open_and_names_the_model(self, server):
        url, _ = server
        body = httpx.get(f"{url}/health").json()
        assert body["status"] == "ok" and body["model_version"].startswith(f"{SERVICE_NAME}-")

    def test_scores_many_customers_and_flags_an_unknown_one(self, server):
        url, customers = server
        ids = [*customers.customer_id[customers.churned_at.isna()].tolist()[:5], "nobody"]
        response = httpx.post(f"{url}/score", json={"customer_ids": ids}, headers=AUTH)
        assert response.status_code == 200
        scores = response.json()["scores"]
        assert [s["customer_id"] for s in scores] == ids
        assert all(0 <= s["churn_probability"] <= 1 for s in scores[:5])
        # every horizon's field, in order where given (40 customers may test neither horizon:
        # then both are empty, never a guess)
        for s in scores[:5]:
            given = [p for p in (s["churn_probability"], s["churn_probability_60d"],
                                 s["churn_probability_90d"]) if p is not None]
            assert given == sorted(given) and "expected_days_to_churn" in s
        assert scores[-1]["churn_probability_60d"] is None
        assert all(s["risk_band"] in {"low", "medium", "high"} for s in scores[:5])
        assert scores[-1]["churn_probability"] is None and "unknown customer" in scores[-1][
            "error"]
        assert [s["status"] for s in scores] == ["active"] * 5 + ["unknown"]

    def test_a_churned_customer_gets_a_status_and_no_probability(self, server):
        url, customers = server
        gone = customers[customers.churned_at <= datetime.now(UTC)]
        response = httpx.post(f"{url}/score", json={"customer_ids": gone.customer_id.tolist()},
                              headers=AUTH)
        scores = response.json()["scores"]
        assert len(scores) == len(gone) > 0
        for score, churned_at in zip(scores, gone.churned_at):
            assert score["status"] == "churned" and score["churn_probability"] is None
            assert score["risk_band"] is None and score["reasons"] == []
            assert datetime.fromisoformat(score["churned_at"]) == churned_at

    def test_a_past_time_is_answered_from_historical_features_as_the_command_line_does(
            self, server):
        url, customers = server
        ids = [*customers.customer_id.tolist()[:3], "nobody"]
        past = customers.attrs["latest"] - timedelta(days=20)
        india = timezone(timedelta(hours=5, minutes=30))  # an offset: answered in UTC
        response = httpx.post(f"{url}/score", headers=AUTH, json={
            "customer_ids": ids, "as_of": past.astimezone(india).isoformat()})
        assert response.status_code == 200
        scores = response.json()["scores"]
        assert {s["features_from"] for s in scores} == {"historical"}
        assert {s["as_of"] for s in scores} == {past.astimezone(UTC).isoformat()}
        result = CliRunner().invoke(app, ["score", *ids, "--json", "--as-of", past.isoformat(),
                                          "--repo", str(customers.attrs["repo"])])
        assert result.exit_code == 0, result.output
        assert "scored from historical features" in result.stderr
        assert [json.loads(line) for line in result.stdout.splitlines()] == scores

    def test_health_reports_the_freshness_of_the_data_to_the_token_holder(self, server):
        url, _ = server
        anonymous = httpx.get(f"{url}/health").json()
        assert "fresh" in anonymous and "freshness" not in anonymous  # no data times in the open
        for wrong in ("Bearer nope", "Bearer tök"):
            assert "freshness" not in httpx.get(f"{url}/health", headers={
                "Authorization": wrong.encode()}).json()
        fresh = httpx.get(f"{url}/health", headers=AUTH).json()["freshness"]
        for key in ("latest_event_at", "last_build_at", "materialized_through",
                    "last_materialize_at", "warnings"):
            assert key in fresh
        _, customers = server
        assert datetime.fromisoformat(fresh["latest_event_at"]) == customers.attrs["latest"]
        assert fresh["materialized_through"] is not None
        assert not any("never materialized" in w for w in fresh["warnings"])
        assert fresh["max_lag_hours"] == 36

    def test_without_the_token_scoring_is_refused(self, server):
        url, _customers = server
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
        assert model["feature_service"] == SERVICE_NAME
        assert model["features"] == served_feature_names()  # the spec's list, in its order
        assert "/score" in httpx.get(f"{url}/openapi.json").json()["paths"]


def exchange(url: str, raw: bytes) -> tuple[int | None, bytes]:
    """Send ``raw`` on a fresh connection; the status and all the server sends until it closes
    (None when it closes without an answer). Fails if it neither answers nor closes in 30 s."""
    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(raw)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else None
    return status, received


def post_head(length: int | None = None, token: str | None = TOKEN) -> bytes:
    lines = [b"POST /score HTTP/1.1", b"Host: localhost", b"Content-Type: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}".encode())
    lines.append(b"Transfer-Encoding: chunked" if length is None
                 else f"Content-Length: {length}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


class TestRequestLimits:
    def test_an_unauthenticated_body_gets_401_before_it_is_sent(self, server):
        url, _ = server
        status, response = exchange(url, post_head(54_000_000, token=None) + b'{"customer')
        assert status == 401 and b"bearer token" in response

    def test_a_declared_body_over_the_limit_gets_413_before_it_is_sent(self, server):
        url, _ = server
        status, response = exchange(url, post_head(2 * 1024 * 1024) + b'{"customer')
        assert status == 413 and b"larger than 1,048,576 bytes" in response

    def test_a_chunked_body_over_the_limit_gets_413(self, server):
        url, _ = server
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"  # 64 KiB; 16 of them are the limit
        status, _ = exchange(url, post_head() + chunk * 16 + b"1\r\n \r\n")
        assert status == 413

    def test_a_body_that_stops_arriving_times_out_with_408(self, server):
        url, _ = server
        status, response = exchange(url, post_head(100) + b'{"customer_ids": ')
        assert status == 408 and b"did not arrive within 1 s" in response

    def test_a_connection_that_sends_no_request_is_closed(self, server):
        url, _ = server
        assert exchange(url, b"") == (None, b"")

    def test_headers_that_never_finish_close_the_connection(self, server):
        url, _ = server
        assert exchange(url, b"POST /score HTTP/1.1\r\nHost: localhost\r\n") == (None, b"")

    def test_a_422_names_the_reason_but_never_echoes_the_input(self, server):
        url, _ = server
        for body in ({"customer_ids": "x" * 500_000}, {"customer_ids": ["x" * 5_000]},
                     {"customer_ids": ["a"], "as_of": "y" * 10_000}):
            response = httpx.post(f"{url}/score", json=body, headers=AUTH)
            assert response.status_code == 422
            assert len(response.content) < 1000 and "xxxx" not in response.text
            assert "yyyy" not in response.text
            (error,) = response.json()["detail"]
            assert error["loc"][:2] == ["body", next(iter(body)) if len(body) == 1 else "as_of"]
            assert error["msg"] and "input" not in error

    def test_a_lone_surrogate_in_an_id_is_422(self, server):
        url, _ = server
        response = httpx.post(f"{url}/score", content=b'{"customer_ids": ["ok", "\\ud800"]}',
                              headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "customer_ids", 1] and "unicode" in error["msg"]

    @pytest.mark.parametrize("token", ["Bearer tökén".encode(), "Bearer tökén".encode("latin-1"),
                                       b"Bearer \xff" + TOKEN.encode()])
    def test_a_non_ascii_token_is_401(self, server, token):
        url, _ = server
        response = httpx.post(f"{url}/score", json={"customer_ids": ["x"]},
                              headers={"Authorization": token})
        assert response.status_code == 401

    def test_the_service_still_answers_after_all_of_it(self, server):
        url, customers = server
        response = httpx.post(f"{url}/score", json={"customer_ids": customers.customer_id[:1]
                                                    .tolist()}, headers=AUTH)
        assert response.status_code == 200


class TestStartUp:
    @pytest.mark.parametrize("token", ["", "  "])
    def test_an_empty_token_is_refused_at_start(self, tmp_path, token):
        from typer.testing import CliRunner

        from usage_features.cli import app

        result = CliRunner().invoke(app, ["serve", "--repo", str(tmp_path)],
                                    env={"USAGE_FEATURES_API_TOKEN": token})
        assert result.exit_code == 2
        assert "USAGE_FEATURES_API_TOKEN is set but empty" in result.output

"""Feast's own CLI in a built feature repo: apply, materialize-incremental, serve.

What a Feast user does after ``usage-features build``: the repo is a plain Feast repo, and the
feature server's answer through ``churn_model_v1`` equals this project's online read.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import copy_feature_repo, populate, start_http_server
from tests.factories import churn_dataset
from usage_features.features.retrieval import online_features
from usage_features.features.spec import REQUEST_TIME
from usage_features.features.store import SERVICE_NAME, open_store

FEAST = str(Path(sys.executable).parent / "feast")


def feast(repo: Path, *args: str) -> str:
    done = subprocess.run([FEAST, *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, f"feast {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A built repo, applied and materialized with ``feast``, its feature server running."""
    repo = copy_feature_repo(tmp_path_factory.mktemp("feast_cli") / "feature_repo")
    events, customers = churn_dataset(seed=21, customers=25)
    populate(repo, events, customers)
    feast(repo, "apply")
    now = datetime.now(UTC)
    feast(repo, "materialize-incremental", now.isoformat())
    process, url = start_http_server([FEAST, "serve", "-p", "{port}", "--no-access-log"],
                                     cwd=repo)
    yield repo, customers.customer_id.tolist(), url, now
    process.terminate()
    process.wait(timeout=15)


def test_feast_lists_the_definitions_it_applied(served):
    repo, *_ = served
    assert SERVICE_NAME in feast(repo, "feature-services", "list")
    views = feast(repo, "feature-views", "list")
    assert "customer_usage" in views and "customer_profile" in views


def test_feast_serve_answers_churn_model_v1_with_the_values_of_our_online_read(served):
    repo, ids, url, now = served
    ids = [*ids, "no-such-customer"]
    response = httpx.post(f"{url}/get-online-features", timeout=30, json={
        "feature_service": SERVICE_NAME, "entities": {"customer_id": ids}})
    assert response.status_code == 200, response.text
    body = response.json()
    answer = {name: result["values"]
              for name, result in zip(body["metadata"]["feature_names"], body["results"])}
    ours = online_features(open_store(repo), ids, as_of=now).set_index("customer_id")
    assert answer["customer_id"] == ids
    request_time = {f.name for f in REQUEST_TIME}
    stored = [c for c in ours.columns if c != "known" and c not in request_time]
    assert stored and set(stored) | request_time <= set(answer)
    for name in stored:
        for customer, value in zip(ids[:-1], answer[name][:-1]):
            expected = ours.at[customer, name]
            # Feast leaves "no history" as null where our read fills the spec's default (0)
            if value is None:
                assert expected == 0 or math.isnan(expected), (name, customer)
            else:
                assert value == pytest.approx(expected, rel=1e-12, abs=0), (name, customer)
    assert all(answer[name][-1] is None for name in stored)  # the unknown customer
    # request-time features: computed by Feast at its own "now", seconds after ours
    for name in request_time & set(answer):
        for customer, value in zip(ids[:-1], answer[name][:-1]):
            expected = ours.at[customer, name]
            if value is None:
                assert math.isnan(expected) or expected is False, (name, customer)
            else:
                assert value == pytest.approx(expected, abs=0.01), (name, customer)

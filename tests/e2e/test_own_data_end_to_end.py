"""Issue 13 end to end, as a new user with a warehouse export: mapped columns, a customers file
without ``plan``, ``train --customers`` alone, ``predict`` with mixed time forms and unknown
customers, and ``score --as-of`` equal to ``predict``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from usage_features.cli import app
from usage_features.simulation import SimulationConfig, simulate

runner = CliRunner()
SETTINGS = """\
events:
  columns:
    id: event_id
    account_id: customer_id
    occurred_at: timestamp
    event_name: event_type
    adoption_score: feature_adoption_score
customers:
  columns:
    account_id: customer_id
    created_at: signup_at
    closed_at: churned_at
"""


def invoke(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def time_forms(stamps: pd.Series) -> list[str]:
    """Each time in one of the forms a warehouse writes, in turn (all UTC, all with offsets)."""
    forms = ["%Y-%m-%d %H:%M:%S.%f+00", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S.%f+00:00"]
    return [t.strftime(forms[i % 3]) for i, t in enumerate(stamps)]


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    work = tmp_path_factory.mktemp("own")
    sim = simulate(SimulationConfig(customers=250, days=200, seed=13))
    events, customers = sim.events.to_pandas(), sim.customers.to_pandas()
    number = {c: f"{i:05d}" for i, c in enumerate(sorted(customers.customer_id))}  # "00042"
    pd.DataFrame({
        "id": events.event_id, "account_id": events.customer_id.map(number),
        "occurred_at": time_forms(events.timestamp),
        "event_name": events.event_type.str.upper(), "adoption_score":
        events.feature_adoption_score, "region": "emea",
    }).to_csv(work / "export.csv", index=False)
    pd.DataFrame({
        "account_id": customers.customer_id.map(number),
        "created_at": customers.signup_at.dt.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "closed_at": customers.churned_at.dt.strftime("%Y-%m-%dT%H:%M:%S%z").fillna(""),
    }).to_csv(work / "accounts.csv", index=False)  # no plan column
    repo = copy_feature_repo(work / "feature_repo")
    (repo / "usage_features.yaml").write_text(SETTINGS)
    invoke("ingest", str(work / "export.csv"), "--repo", str(repo))
    invoke("build", "--repo", str(repo))
    invoke("train", "--repo", str(repo), "--customers", str(work / "accounts.csv"))
    end = pd.Timestamp(events.timestamp.max()).ceil("D")
    invoke("materialize", "--repo", str(repo), "--end", end.strftime("%Y-%m-%dT%H:%M:%S"))
    churned = customers.churned_at.notna() & (customers.churned_at <= end)
    return work, repo, end, customers.assign(account=customers.customer_id.map(number),
                                             churned=churned)


def test_predict_reads_mixed_time_forms_and_flags_unknown_and_churned(own):
    work, repo, end, customers = own
    live = customers[~customers.churned].account.iloc[:3].tolist()
    gone = customers[customers.churned].account.iloc[0]
    rows = pd.DataFrame({
        "customer_id": [*live, gone, "99999"],
        "event_timestamp": [end.strftime("%Y-%m-%d %H:%M:%S+00"),
                            (end - pd.Timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.123456Z"),
                            end.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                            end.isoformat(), end.isoformat()]})
    rows.to_csv(work / "entities.csv", index=False)
    invoke("predict", "--repo", str(repo), "--entities", str(work / "entities.csv"),
           "--out", str(work / "scored.csv"))
    scored = pd.read_csv(work / "scored.csv", dtype={"customer_id": str})
    assert scored.customer_id.tolist() == rows.customer_id.tolist()  # zeros kept
    assert scored.status.tolist() == ["active"] * 3 + ["churned", "unknown"]
    assert scored.churn_probability[:3].between(0, 1).all()
    assert scored.churn_probability[3:].isna().all()


def test_score_as_of_equals_predict_online_and_in_the_past(own):
    work, repo, end, customers = own
    live = customers[~customers.churned].account.iloc[:5].tolist()
    for moment in (end + pd.Timedelta(hours=9), end - pd.Timedelta(days=20, hours=3)):
        out = invoke("score", *live, "--repo", str(repo), "--json", "--as-of",
                     moment.strftime("%Y-%m-%dT%H:%M:%S")).stdout
        online = {s["customer_id"]: s["churn_probability"]
                  for s in map(json.loads, out.splitlines())}
        pd.DataFrame({"customer_id": live, "event_timestamp": moment.isoformat()}).to_csv(
            work / "at.csv", index=False)
        invoke("predict", "--repo", str(repo), "--entities", str(work / "at.csv"),
               "--out", str(work / "at_scored.csv"))
        batch = pd.read_csv(work / "at_scored.csv", dtype={"customer_id": str})
        np.testing.assert_allclose([online[c] for c in live], batch.churn_probability,
                                   rtol=1e-12)

"""Issue 24 end to end: another SaaS product's export (25 event names of its own, integer
account ids, no event id, no adoption score, identical rows, times in several offsets) and an
accounts CSV, through the commands a newcomer runs: ingest (every row accounted for), build,
train, materialize, predict and score, online equal to offline; per-type counts and the
breadth adoption features equal to brute force over the raw export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from tests.reference_vocabulary import brute_force_vocabulary_features
from usage_features.cli import app
from usage_features.features.retrieval import historical_features
from usage_features.features.store import open_store
from usage_features.ingestion.settings import load_settings

runner = CliRunner()


def invoke(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    work = tmp_path_factory.mktemp("crm")
    invoke("simulate", "--out", str(work / "raw"), "--customers", "300", "--days", "200",
           "--seed", "21", "--vocabulary", "crm")
    export = pd.read_csv(work / "raw" / "events.csv", dtype=str)
    # names the vocabulary does not declare: kept and counted as "other"
    export.loc[export.index % 97 == 0, "event_type_name"] = "Export_PDF"
    export.to_csv(work / "events.csv", index=False)
    repo = copy_feature_repo(work / "feature_repo")
    settings = (work / "raw" / "usage_features.yaml").read_text()
    (repo / "usage_features.yaml").write_text(settings.replace("unlisted: reject",
                                                               "unlisted: other"))
    summary = json.loads(invoke("ingest", str(work / "events.csv"), "--repo", str(repo),
                                "--json").stdout)
    invoke("load-customers", str(work / "raw" / "accounts.csv"), "--repo", str(repo))
    invoke("build", "--repo", str(repo))
    invoke("train", "--repo", str(repo))
    end = pd.Timestamp("2025-07-15", tz="UTC")
    invoke("materialize", "--repo", str(repo), "--end", end.strftime("%Y-%m-%dT%H:%M:%S"))
    return work, repo, export, summary, end


def test_every_row_of_the_export_is_an_event_identical_rows_included(crm):
    _, _, export, summary, _ = crm
    assert summary["read"] == len(export) == summary["accepted"]
    assert summary["rejected"] == summary["duplicates"] == 0
    assert export.duplicated().sum() > 100  # the export does hold identical rows
    assert summary["unlisted_by_name"] == {"export_pdf": int((export.index % 97 == 0).sum())}


def test_re_ingesting_the_export_adds_nothing(crm, tmp_path):
    work, repo, _, _, _ = crm
    again = json.loads(invoke("ingest", str(work / "events.csv"), "--repo", str(repo),
                              "--json").stdout)
    assert again["accepted"] == 0 and again["duplicates"] == again["read"]


def test_historical_features_equal_brute_force_over_the_raw_export(crm):
    _, repo, export, _, _ = crm
    vocabulary = load_settings(repo).vocabulary
    rng = np.random.default_rng(0)
    accounts = rng.choice(export.account_id.unique(), 12, replace=False)
    moments = pd.Timestamp("2025-03-01 15:30", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 120 * 24, 12), "h")
    entity = pd.DataFrame({"customer_id": accounts, "event_timestamp": moments})
    served = historical_features(open_store(repo), entity)
    events = pd.DataFrame({"customer_id": export.account_id,
                           "timestamp": pd.to_datetime(export.event_time, utc=True,
                                                       format="ISO8601"),
                           "event_type": export.event_type_name.str.strip().str.lower()})
    types = {t.name: (t.role.value if t.role else None) for t in vocabulary.types}
    expected = brute_force_vocabulary_features(events, types, "other", entity)
    assert "search_count_30d" in expected and "other_count_30d" in expected
    pd.testing.assert_frame_equal(served[expected.columns], expected, check_dtype=False,
                                  check_exact=False, rtol=1e-9)


def test_online_scores_equal_batch_predictions_at_the_same_time(crm):
    work, repo, export, _, end = crm
    accounts = [str(a) for a in export.account_id.unique()[:6]]
    moment = end + pd.Timedelta(hours=9)
    out = invoke("score", *accounts, "--repo", str(repo), "--json", "--as-of",
                 moment.strftime("%Y-%m-%dT%H:%M:%S")).stdout
    online = {s["customer_id"]: s for s in map(json.loads, out.splitlines())}
    pd.DataFrame({"customer_id": accounts, "event_timestamp": moment.isoformat()}).to_csv(
        work / "at.csv", index=False)
    invoke("predict", "--repo", str(repo), "--entities", str(work / "at.csv"),
           "--out", str(work / "scored.csv"))
    batch = pd.read_csv(work / "scored.csv", dtype={"customer_id": str}).set_index("customer_id")
    for account in accounts:
        assert online[account]["status"] == batch.status[account]
        if batch.status[account] == "active":
            assert online[account]["churn_probability"] == pytest.approx(
                batch.churn_probability[account], rel=1e-12)


def test_a_changed_vocabulary_refuses_the_model_until_it_is_retrained(crm, tmp_path):
    _, repo, _, _, end = crm
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    settings = copy / "usage_features.yaml"
    settings.write_text(settings.read_text().replace("  unlisted: other",
                                                     "    export_pdf: {}\n  unlisted: other"))
    result = invoke("score", "5", "--repo", str(copy), "--as-of",
                    end.strftime("%Y-%m-%dT%H:%M:%S"), code=2)
    assert "another event vocabulary" in result.output and "export_pdf" in result.output
    built = invoke("build", "--repo", str(copy)).stdout
    assert "vocabulary changed" in built
    # the kept rows of the newly declared name are its own type now, with no new delivery
    usage = pd.read_parquet(copy / "data" / "features" / "customer_usage")
    assert usage.export_pdf_count_30d.sum() > 0 and "other_count_30d" in usage

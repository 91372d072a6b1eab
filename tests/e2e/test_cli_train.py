"""Training and batch prediction end to end through the command line, on simulated data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from tests.reference import brute_force_features
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.features.retrieval import served_feature_names
from usage_features.service_layer.train import TrainConfig, training_frame
from usage_features.training.evaluate import LEAKAGE_ALARM_AUC
from usage_features.training.metadata import horizons_version_sha256
from usage_features.training.model import ModelMismatchError
from usage_features.training.persistence import TRUSTED_TYPES, load_model, model_types, save_model

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("train")
    repo = copy_feature_repo(work / "feature_repo")
    invoke("simulate", "--out", str(work / "raw"), "--customers", "500", "--days", "240",
           "--seed", "5")
    invoke("ingest", str(work / "raw" / "events.parquet"), "--repo", str(repo))
    invoke("load-customers", str(work / "raw" / "customers.parquet"), "--repo", str(repo))
    invoke("build", "--repo", str(repo))
    summary = json.loads(invoke("train", "--repo", str(repo), "--json"))
    return work, repo, summary


class TestTrainCommand:
    def test_reports_the_shipped_model_and_every_candidate_on_the_validation_period(
            self, trained):
        _, _, summary = trained
        assert set(summary["metrics"]) == {"model", "gradient boosting", "logistic regression",
                                           "baseline: event_count_30d"}
        for metrics in summary["metrics"].values():
            assert set(metrics) == {"roc_auc", "pr_auc", "brier", "top_decile_lift", "ece",
                                    "precision_at_capacity", "recall_at_capacity"}
            assert 0 <= metrics["precision_at_capacity"] <= 1

    def test_ships_the_candidate_with_the_best_validation_pr_auc(self, trained):
        _, _, summary = trained
        metrics, selection = summary["metrics"], summary["selection"]
        best = max((m for m in metrics if m != "model"), key=lambda m: metrics[m]["pr_auc"])
        assert selection["winner"] == best and metrics["model"] == metrics[best]
        runner_up = selection["runner_up"]
        assert selection["margin"]["pr_auc"] == pytest.approx(
            metrics[best]["pr_auc"] - metrics[runner_up]["pr_auc"])
        assert all(metrics["model"]["pr_auc"] >= m["pr_auc"] for m in metrics.values())
        meta = json.loads(Path(summary["model_path"] + ".json").read_text())
        assert meta["selection"]["refit_rows"] > summary["counts"]["train"] + summary[
            "counts"]["validation"] - 1
        report = Path(summary["report_dir"])
        assert f"Shipped: **{best}" in (report / "summary.md").read_text()
        table = pd.read_csv(report / "metrics.csv")
        assert table.loc[table.selected, "model"].tolist() == [best]

    def test_the_model_learns_without_leaking_the_label(self, trained):
        _, _, summary = trained
        # 500 customers: a small validation period, so the floor is the count-only baseline
        # (the quality targets are measured at scale: tests/unit/test_simulator_learnability).
        auc = summary["metrics"]["model"]["roc_auc"]
        count_only = summary["metrics"]["baseline: event_count_30d"]["roc_auc"]
        assert max(0.65, count_only) < auc < LEAKAGE_ALARM_AUC, summary["metrics"]
        assert summary["leakage_alarm"] is False

    def test_writes_the_model_its_metadata_and_a_report_with_plots(self, trained):
        _, _, summary = trained
        assert Path(summary["model_path"]).is_file()
        meta = json.loads(Path(summary["model_path"] + ".json").read_text())
        assert meta["feature_service"] == "churn_model_v1"
        assert meta["features"] == served_feature_names()
        assert len(meta["training_data_sha256"]) == 64 and "scikit-learn" in meta["versions"]
        report = Path(summary["report_dir"])
        for name in ("roc", "precision_recall", "calibration", "lift", "permutation_importance"):
            assert (report / f"{name}.png").stat().st_size > 1000
        assert "Ablation" in (report / "summary.md").read_text()
        assert {row["features"] for row in summary["ablation"]} >= {
            "all", "without decay features", "without adoption features"}

    def test_predict_scores_entity_rows_through_historical_features(self, trained):
        work, repo, _ = trained
        entities = pd.DataFrame({"customer_id": ["cust-00001", "cust-00002", "nobody"],
                                 "event_timestamp": pd.Timestamp("2025-08-01", tz="UTC"),
                                 "note": ["a", "b", "c"]})
        entities.to_parquet(work / "entities.parquet")
        invoke("predict", "--entities", str(work / "entities.parquet"), "--out",
               str(work / "scored.csv"), "--repo", str(repo))
        scored = pd.read_csv(work / "scored.csv")
        assert scored.note.tolist() == ["a", "b", "c"]
        customers = pd.read_parquet(work / "raw" / "customers.parquet").set_index("customer_id")
        gone = customers.churned_at.reindex(entities.customer_id[:2]) <= entities.event_timestamp[0]
        assert scored.status.tolist() == [*np.where(gone, "churned", "active"), "unknown"]
        live = scored.status == "active"
        assert scored.churn_probability[live].between(0, 1).all()
        assert scored.churn_probability[~live].isna().all()
        for shorter, longer in (("churn_probability", "churn_probability_60d"),
                                ("churn_probability_60d", "churn_probability_90d")):
            assert (scored[shorter][live] <= scored[longer][live]).all()
            assert scored[longer][~live].isna().all()
        assert scored.churn_probability_90d[live].le(1).all()
        assert "expected_days_to_churn" in scored.columns

    def test_reports_each_horizon_s_survival_model_against_its_own_classifier(self, trained):
        _, _, summary = trained
        horizons = summary["horizons"]
        assert horizons["horizons"] == [60, 90] and set(horizons["shipped"]) == {"60", "90"}
        table = pd.read_csv(Path(summary["report_dir"]) / "horizons.csv")
        assert table.horizon_days.tolist() == [60, 60, 90, 90]
        assert table.groupby("horizon_days").shipped.sum().tolist() == [1, 1]
        assert table.c_index.between(0.5, 1).all()
        # each horizon's test period starts after the 30-day classifier's training rows end
        assert (pd.to_datetime(table.test_start) > pd.Timestamp(
            json.loads(Path(summary["model_path"] + ".json").read_text())["train_window"][
                "train_start"])).all()
        text = (Path(summary["report_dir"]) / "summary.md").read_text()
        assert "## Horizons: 60, 90 days" in text and "c-index" in text
        model = load_model(Path(summary["model_path"]))
        assert model.horizon_days == (60, 90)
        shipped = {h: model.horizons.shipped(h) for h in model.horizon_days}
        assert {str(h): s for h, s in shipped.items()} == horizons["shipped"]


@pytest.mark.slow
def test_select_by_precision_at_capacity_ships_the_best_on_it(trained, tmp_path):
    _, repo, _ = trained
    (repo / "usage_features.yaml").write_text("capacity: 10\n")
    try:
        summary = json.loads(invoke("train", "--repo", str(repo), "--select-by",
                                    "precision_at_capacity", "--model-out",
                                    str(tmp_path / "m.skops"), "--json"))
    finally:
        (repo / "usage_features.yaml").unlink()
    metrics, selection = summary["metrics"], summary["selection"]
    candidates = [m for m in metrics if m != "model"]
    best = sorted(candidates, key=lambda m: (-metrics[m]["precision_at_capacity"],
                                             -metrics[m]["roc_auc"], candidates.index(m)))[0]
    assert selection["winner"] == best
    assert selection["ranked_by"] == ["precision_at_capacity", "roc_auc"]
    meta = json.loads(Path(summary["model_path"] + ".json").read_text())
    assert meta["selection"]["capacity"] == "10"


def test_backtest_reports_each_candidates_mean_and_spread_over_the_folds(trained, tmp_path):
    _, repo, _ = trained
    summary = json.loads(invoke("train", "--repo", str(repo), "--backtest", "2", "--model-out",
                                str(tmp_path / "m.skops"), "--json"))
    backtest = summary["backtest"]
    assert backtest["folds"] == 2
    assert set(backtest["candidates"]) == set(summary["metrics"]) - {"model"}
    for metrics in backtest["candidates"].values():
        for spread in metrics.values():
            assert spread["min"] <= spread["mean"] <= spread["max"] and spread["std"] >= 0
    winner = summary["selection"]["winner"]
    assert set(backtest["versus_winner"]) == set(backtest["candidates"]) - {winner}
    per_fold = pd.read_csv(Path(summary["report_dir"]) / "backtest.csv")
    assert sorted(per_fold.fold.unique()) == [1, 2]
    auc = per_fold[per_fold.model == "logistic regression"].roc_auc
    assert backtest["candidates"]["logistic regression"]["roc_auc"]["mean"] == pytest.approx(
        auc.mean())
    assert "Backtest (2 rolling-origin folds)" in (
        Path(summary["report_dir"]) / "summary.md").read_text()


def test_a_model_with_horizons_is_versioned_by_them_and_saves_its_version(trained):
    _, _, summary = trained
    meta = json.loads(Path(summary["model_path"] + ".json").read_text())
    assert summary["horizons"]["shipped"]  # the data tests the horizons
    assert meta["version_sha256"] == horizons_version_sha256(meta["training_data_sha256"],
                                                             meta["horizons"])
    assert summary["model_version"] == f"churn_model_v1-{meta['version_sha256'][:12]}"
    assert Path(summary["report_dir"]).name == summary["model_version"]


def test_max_rows_trains_on_whole_customers_and_records_the_sample(trained, tmp_path):
    _, repo, full = trained
    assert full["sample"] == {}  # below the default limit: every row
    summary = json.loads(invoke("train", "--repo", str(repo), "--max-rows", "3000",
                                "--model-out", str(tmp_path / "m.skops"), "--json"))
    sample = summary["sample"]
    assert sample["max_rows"] == 3000 and sample["grid_rows"] > 3000
    assert sample["rows"] >= 3000 and sample["customers"] < sample["of_customers"] == 500
    # what was fitted and validated is the sample's rows, all of them
    counts = summary["counts"]
    assert counts["train"] + counts["validation"] <= sample["rows"]
    assert summary["selection"]["refit_rows"] == sample["rows"]
    meta = json.loads(Path(summary["model_path"] + ".json").read_text())
    assert meta["sample"] == sample


class TestTrainingData:
    def test_no_training_feature_comes_from_after_its_row(self, trained):
        work, repo, _ = trained
        frame = training_frame(TrainConfig(repo=repo))
        sample = frame.sample(120, random_state=0)
        events = pd.read_parquet(work / "raw" / "events.parquet")
        customers = pd.read_parquet(work / "raw" / "customers.parquet")
        expected = brute_force_features(events, customers, sample[["customer_id",
                                                                   "event_timestamp"]])
        for name in served_feature_names():
            np.testing.assert_allclose(sample[name].astype(float), expected[name].astype(float),
                                       rtol=1e-9, atol=1e-9, equal_nan=True,
                                       err_msg=name)
        assert (frame.days_since_last_event.dropna() >= 0).all()


class TestSavedModels:
    def test_a_saved_model_round_trips_with_identical_predictions(self, trained, tmp_path):
        _, repo, _ = trained
        model = load_model(RepoPaths(repo).model, served_feature_names())
        frame = training_frame(TrainConfig(repo=repo)).head(200)
        copy = load_model(save_model(model, tmp_path / "copy.skops"))
        np.testing.assert_array_equal(copy.predict_proba(frame), model.predict_proba(frame))

    def test_the_trained_model_is_made_only_of_allowed_types(self, trained):
        _, repo, _ = trained
        missing = model_types(RepoPaths(repo).model.read_bytes()) - TRUSTED_TYPES
        assert not missing, f"review, then add to TRUSTED_TYPES: {sorted(missing)}"

    def test_a_model_trained_on_another_feature_list_is_refused(self, trained, tmp_path):
        _, repo, _ = trained
        model = load_model(RepoPaths(repo).model)
        model.metadata.features = model.metadata.features[:-1]
        path = save_model(model, tmp_path / "old.skops")
        with pytest.raises(ModelMismatchError, match=r"different feature list.*retrain"):
            load_model(path, served_feature_names())


class TestBadInput:
    def test_churn_before_signup_is_a_clear_error(self, trained, tmp_path):
        _, repo, _ = trained
        bad = tmp_path / "customers.csv"
        pd.DataFrame({"customer_id": ["a"], "signup_at": ["2025-03-01T00:00:00Z"],
                      "churned_at": ["2025-02-01T00:00:00Z"], "plan": ["pro"]}).to_csv(bad)
        result = runner.invoke(app, ["train", "--repo", str(repo), "--customers", str(bad)])
        assert result.exit_code == 2
        assert "churned_at_before_signup_at" in result.output

    def test_a_customers_file_without_churned_at_has_no_churners_to_learn_from(
            self, trained, tmp_path):
        _, repo, _ = trained
        bad = tmp_path / "customers.csv"
        pd.DataFrame({"customer_id": ["a"], "signup_at": ["2025-03-01T00:00:00Z"],
                      "plan": ["pro"]}).to_csv(bad, index=False)
        result = runner.invoke(app, ["train", "--repo", str(repo), "--customers", str(bad)])
        assert result.exit_code == 2 and "labels need both classes" in result.output

    def test_labels_without_churners_are_a_clear_error(self, trained, tmp_path):
        _, repo, _ = trained
        customers = pd.read_parquet(RepoPaths(repo).customers).assign(churned_at=pd.NaT)
        customers.to_parquet(tmp_path / "loyal.parquet")
        result = runner.invoke(app, ["train", "--repo", str(repo), "--customers",
                                     str(tmp_path / "loyal.parquet")])
        assert result.exit_code == 2 and "labels need both classes" in result.output

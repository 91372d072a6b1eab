"""monitor end to end: an ordinary day raises no alarm, halved usage does, PSI and skew exact."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.daily_world import FIRST_DAILY, day_end, make_world
from tests.reference import brute_force_features, brute_force_psi
from usage_features.adapters.score_snapshots import read_snapshot
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.features.retrieval import historical_features
from usage_features.features.store import open_store
from usage_features.monitoring.report import skew
from usage_features.training.persistence import load_model
from usage_features.training.train import REFERENCE_FILE

runner = CliRunner()


def refreshed(world):
    world.deliver(FIRST_DAILY)
    result = world.refresh(FIRST_DAILY)
    assert result.exit_code == 0, result.output
    return world


@pytest.fixture(scope="module")
def steady(tmp_path_factory):
    return refreshed(make_world(tmp_path_factory.mktemp("steady")))


@pytest.fixture(scope="module")
def halved(tmp_path_factory, steady):
    """The same business with usage halved over the last 30 days, scored by steady's model."""
    return refreshed(make_world(tmp_path_factory.mktemp("halved"), halve_usage_days=30,
                                model_from=steady))


@pytest.fixture(scope="module")
def brute(steady) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Brute-force features over the raw events: of the model's validation rows, each moved to
    the snapshot's weekday and time of day, and of the snapshot's customers."""
    paths = RepoPaths(steady.repo)
    model = load_model(paths.model)
    validation = pd.read_parquet(paths.reports / model.metadata.model_version / REFERENCE_FILE)
    snapshot = read_snapshot(paths.scores, day_end(FIRST_DAILY).date())
    rows = pd.DataFrame({"customer_id": snapshot.customer_id, "event_timestamp": snapshot.as_of})
    delivered = steady.events[steady.events.timestamp < day_end(FIRST_DAILY)]
    today = brute_force_features(delivered, steady.customers, rows)
    as_of = pd.Timestamp(day_end(FIRST_DAILY))
    moved = pd.DataFrame({"customer_id": validation.customer_id, "event_timestamp": [
        t + pd.Timedelta(days=next(k for k in range(7)
                                   if (t + pd.Timedelta(days=k)).weekday() == as_of.weekday()))
        for t in validation.event_timestamp]})
    assert (moved.event_timestamp.dt.time == as_of.time()).all()
    return brute_force_features(delivered, steady.customers, moved), today


def run_monitor(world):
    result = runner.invoke(app, ["monitor", "--repo", str(world.repo), "--json"])
    return result, json.loads(result.stdout)


class TestMonitor:
    def test_an_ordinary_day_raises_no_alarm_and_writes_the_report(self, steady):
        result, report = run_monitor(steady)
        assert result.exit_code == 0, report["alarms"]
        assert report["alarms"] == []
        assert report["skew"]["compared_customers"] > 0
        assert report["skew"]["mismatched_customers"] == 0
        folder = RepoPaths(steady.repo).reports / "monitor" / report["snapshot_day"]
        for name in ("monitor.md", "monitor.json", "feature_drift.png",
                     "score_distribution.png", "realized_performance.png"):
            assert (folder / name).stat().st_size > 0
        tenure = next(d for d in report["feature_drift"] if d["feature"] == "tenure_days")
        assert tenure["grows_with_time"] and not tenure["alarm"]

    def test_feature_psi_equals_brute_force_over_the_raw_events(self, steady, brute):
        _, report = run_monitor(steady)
        reference, today = brute
        by_name = {d["feature"]: d["psi"] for d in report["feature_drift"]}
        for name in ("event_count_30d", "decay_ratio_7d_30d", "adoption_score_latest",
                     "days_since_last_monitoring_run"):
            expected = brute_force_psi(reference[name].to_numpy(dtype=float),
                                       today[name].to_numpy(dtype=float))
            assert by_name[name] == pytest.approx(expected, rel=1e-9, abs=1e-12), name

    def test_each_horizon_s_score_psi_equals_brute_force(self, steady, brute):
        """The model's horizon probabilities of the brute-force validation rows against the
        snapshot's, one PSI per horizon the model gives."""
        _, report = run_monitor(steady)
        model = load_model(RepoPaths(steady.repo).model)
        snapshot = read_snapshot(RepoPaths(steady.repo).scores, day_end(FIRST_DAILY).date())
        expected = model.predict_frame(brute[0])
        assert model.horizon_days  # the world's data tests the horizons
        assert set(report["horizon_psi"]) == {f"churn_probability_{h}d"
                                              for h in model.horizon_days}
        for column, value in report["horizon_psi"].items():
            assert value == pytest.approx(brute_force_psi(
                expected[column].to_numpy(dtype=float), snapshot[column].to_numpy(dtype=float)),
                rel=1e-9, abs=1e-12), column

    def test_usage_halved_for_a_month_raises_drift_alarms(self, halved):
        result, report = run_monitor(halved)
        assert result.exit_code == 1
        drift = {d["feature"]: d for d in report["feature_drift"]}
        assert drift["event_count_30d"]["alarm"], drift
        assert drift["event_count_7d"]["psi"] > 0.1  # a moderate shift at least
        assert any("event_count_30d" in alarm for alarm in report["alarms"])

    def test_skew_check_finds_a_feature_served_differently_from_history(self, steady):
        paths = RepoPaths(steady.repo)
        store = open_store(steady.repo)
        snapshot = read_snapshot(paths.scores, day_end(FIRST_DAILY).date())
        history = historical_features(store, pd.DataFrame({
            "customer_id": snapshot.customer_id, "event_timestamp": snapshot.as_of}))
        features = load_model(paths.model).metadata.features
        as_of = day_end(FIRST_DAILY)
        assert skew(store, history, features, as_of, as_of, 10_000)["mismatched_customers"] == 0
        history.loc[history.index[3], "event_count_30d"] += 1
        found = skew(store, history, features, as_of, as_of, 10_000)
        assert found["mismatched_customers"] == 1
        assert found["features"] == {"event_count_30d": 1}

    def test_without_a_snapshot_monitor_says_to_run_refresh(self, tmp_path):
        from tests.conftest import copy_feature_repo

        repo = copy_feature_repo(tmp_path / "repo")
        result = runner.invoke(app, ["monitor", "--repo", str(repo)])
        assert result.exit_code == 2
        assert "no score snapshots" in result.output and "refresh" in result.output

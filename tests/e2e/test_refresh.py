"""The daily refresh end to end: new inbox files each day, scores equal predict, twice = once."""

from __future__ import annotations

import fcntl
import json
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.features.build import build_features
from usage_features.features.store import apply_definitions
from usage_features.ingestion import ingest_files
from usage_features.ingestion.customers import load_customers
from usage_features.serving.snapshots import read_snapshot, snapshot_days
from usage_features.simulation import SimulationConfig, simulate
from usage_features.training.train import TrainConfig, predict, train

START, DAYS, FIRST_DAILY = date(2025, 1, 1), 200, 195
runner = CliRunner()


def day_end(day_index: int) -> datetime:
    """The refresh time of a simulated day: its end, i.e. the next day's midnight."""
    return datetime.combine(START + timedelta(days=day_index + 1), time(), tzinfo=UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A trained repo holding the events before FIRST_DAILY; one inbox file per later day."""
    work = tmp_path_factory.mktemp("refresh")
    sim = simulate(SimulationConfig(customers=300, days=DAYS, seed=21, start=START))
    events = sim.events.to_pandas()
    day = (events.timestamp - pd.Timestamp(START, tz="UTC")).dt.days
    repo = copy_feature_repo(work / "feature_repo")
    paths = RepoPaths(repo)
    events[day < FIRST_DAILY].to_parquet(work / "history.parquet", index=False)
    ingest_files([work / "history.parquet"], paths, now=day_end(FIRST_DAILY - 1))
    sim.customers.to_pandas().to_parquet(work / "customers.parquet", index=False)
    load_customers(work / "customers.parquet", paths)
    build_features(paths)
    apply_definitions(repo)
    train(TrainConfig(repo=repo, train_end=day_end(FIRST_DAILY - 1), importance_repeats=1))
    daily = {d: events[day == d] for d in range(FIRST_DAILY, DAYS)}
    return work, repo, daily, sim.customers.to_pandas()


def deliver(work, daily, d: int) -> None:
    (work / "inbox").mkdir(exist_ok=True)
    daily[d].to_parquet(work / "inbox" / f"events-{d}.parquet", index=False)


def run_refresh(work, repo, d: int, *extra: str):
    return runner.invoke(app, ["refresh", "--repo", str(repo), "--inbox", str(work / "inbox"),
                               "--now", day_end(d).isoformat(), "--json", *extra])


def log_rows(repo) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows
               for p in (RepoPaths(repo).events).rglob("*.parquet"))


class TestRefresh:
    def test_each_day_ingests_only_the_new_file_and_scores_every_active_customer(self, world):
        work, repo, daily, customers = world
        for d in (FIRST_DAILY, FIRST_DAILY + 1):
            deliver(work, daily, d)
            result = run_refresh(work, repo, d)
            assert result.exit_code == 0, result.output
            summary = json.loads(result.stdout)
            assert summary["files_ingested"] == [f"events-{d}.parquet"]
            assert summary["events_accepted"] == len(daily[d])
            now = pd.Timestamp(day_end(d))
            active = customers[(customers.signup_at <= now)
                               & (customers.churned_at.isna() | (customers.churned_at > now))]
            assert summary["active_customers"] == len(active)
            snapshot = read_snapshot(RepoPaths(repo).scores, day_end(d).date())
            scored = set(snapshot.customer_id)
            assert scored <= set(active.customer_id)
            # only customers without any event yet go unscored, each with its reason
            assert len(active) - len(scored) == sum(summary["not_scored"].values())

    def test_running_the_same_day_twice_changes_nothing(self, world):
        work, repo, daily, _ = world
        d = FIRST_DAILY + 2
        deliver(work, daily, d)
        first = json.loads(run_refresh(work, repo, d).stdout)
        rows = log_rows(repo)
        snapshot = read_snapshot(RepoPaths(repo).scores, day_end(d).date())
        second = json.loads(run_refresh(work, repo, d).stdout)
        assert first["files_ingested"] and second["files_ingested"] == []
        assert log_rows(repo) == rows
        pd.testing.assert_frame_equal(
            read_snapshot(RepoPaths(repo).scores, day_end(d).date()), snapshot)

    def test_snapshot_scores_equal_predict_for_the_same_customer_and_time(self, world):
        work, repo, daily, _ = world
        d = FIRST_DAILY + 3
        deliver(work, daily, d)
        assert run_refresh(work, repo, d).exit_code == 0
        snapshot = read_snapshot(RepoPaths(repo).scores, day_end(d).date())
        rows = pd.DataFrame({"customer_id": snapshot.customer_id,
                             "event_timestamp": snapshot.as_of})
        batch = predict(repo, rows)
        pd.testing.assert_series_equal(batch.churn_probability, snapshot.churn_probability,
                                       check_names=False, rtol=1e-12)

    def test_a_run_killed_after_ingesting_is_completed_by_the_next(self, world, monkeypatch):
        import usage_features.serving.materialize as materialize_module

        work, repo, daily, _ = world
        d = FIRST_DAILY + 4
        deliver(work, daily, d)
        rows = log_rows(repo)

        def killed(*args, **kwargs):
            raise KeyboardInterrupt  # as if the process died mid-run

        monkeypatch.setattr(materialize_module, "materialize", killed)
        with pytest.raises(KeyboardInterrupt):
            from usage_features.refresh import RefreshConfig, refresh

            refresh(RefreshConfig(repo=repo, inbox=work / "inbox", now=day_end(d)))
        assert day_end(d).date() not in snapshot_days(RepoPaths(repo).scores)
        monkeypatch.undo()
        result = run_refresh(work, repo, d)
        assert result.exit_code == 0, result.output
        assert log_rows(repo) == rows + len(daily[d])
        assert day_end(d).date() in snapshot_days(RepoPaths(repo).scores)

    def test_a_second_refresh_while_one_runs_exits_clearly_and_does_nothing(self, world):
        work, repo, daily, _ = world
        d = FIRST_DAILY + 4
        with open(RepoPaths(repo).data / ".refresh.lock", "a+") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            result = run_refresh(work, repo, d)
        assert result.exit_code == 3
        assert "another refresh" in result.output

    def test_stale_data_raises_the_freshness_alarm_and_a_non_zero_exit(self, world):
        work, repo, daily, _ = world
        d = FIRST_DAILY + 4
        latest = max(frame.timestamp.max() for frame in daily.values()
                     if frame.timestamp.max() < pd.Timestamp(day_end(d)))
        lag_hours = (pd.Timestamp(day_end(d)) - latest).total_seconds() / 3600
        stale = run_refresh(work, repo, d, "--max-lag-hours", str(lag_hours * 0.99))
        assert stale.exit_code == 1
        assert json.loads(stale.stdout)["alarms"]
        fresh = run_refresh(work, repo, d, "--max-lag-hours", str(lag_hours * 1.01))
        assert fresh.exit_code == 0 and json.loads(fresh.stdout)["alarms"] == []

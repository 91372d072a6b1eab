"""The daily refresh end to end: new inbox files each day, scores equal predict, twice = once."""

from __future__ import annotations

import fcntl
import gc
import json

import pandas as pd
import pytest

from tests.daily_world import FIRST_DAILY, day_end, make_world
from tests.fakes import ListScoreSink
from usage_features.adapters.score_snapshots import read_snapshot, snapshot_days
from usage_features.config import RepoPaths
from usage_features.service_layer.bootstrap import bootstrap
from usage_features.service_layer.predict import predict


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("refresh"))


class TestRefresh:
    def test_each_day_ingests_only_the_new_file_and_scores_every_active_customer(self, world):
        for d in (FIRST_DAILY, FIRST_DAILY + 1):
            world.deliver(d)
            result = world.refresh(d)
            assert result.exit_code == 0, result.output
            summary = json.loads(result.stdout)
            assert summary["files_ingested"] == [f"events-{d}.parquet"]
            assert summary["events_accepted"] == len(world.daily[d])
            now = pd.Timestamp(day_end(d))
            customers = world.customers
            active = customers[(customers.signup_at <= now)
                               & (customers.churned_at.isna() | (customers.churned_at > now))]
            assert summary["active_customers"] == len(active)
            snapshot = read_snapshot(RepoPaths(world.repo).scores, day_end(d).date())
            scored = set(snapshot.customer_id)
            assert scored <= set(active.customer_id)
            # only customers without any event yet go unscored, each with its reason
            assert len(active) - len(scored) == sum(summary["not_scored"].values())

    def test_running_the_same_day_twice_changes_nothing(self, world):
        d = FIRST_DAILY + 2
        world.deliver(d)
        first = json.loads(world.refresh(d).stdout)
        rows = world.log_rows()
        snapshot = read_snapshot(RepoPaths(world.repo).scores, day_end(d).date())
        second = json.loads(world.refresh(d).stdout)
        assert first["files_ingested"] and second["files_ingested"] == []
        assert world.log_rows() == rows
        pd.testing.assert_frame_equal(
            read_snapshot(RepoPaths(world.repo).scores, day_end(d).date()), snapshot)

    def test_snapshot_scores_equal_predict_for_the_same_customer_and_time(self, world):
        d = FIRST_DAILY + 3
        world.deliver(d)
        assert world.refresh(d).exit_code == 0
        snapshot = read_snapshot(RepoPaths(world.repo).scores, day_end(d).date())
        rows = pd.DataFrame({"customer_id": snapshot.customer_id,
                             "event_timestamp": snapshot.as_of})
        batch = predict(bootstrap(world.repo), rows)
        pd.testing.assert_series_equal(batch.churn_probability, snapshot.churn_probability,
                                       check_names=False, rtol=1e-12)

    def test_a_run_killed_after_ingesting_is_completed_by_the_next(self, world, monkeypatch):
        import usage_features.service_layer.refresh as refresh_module

        d = FIRST_DAILY + 4
        world.deliver(d)
        rows = world.log_rows()

        def killed(*args, **kwargs):
            raise KeyboardInterrupt  # as if the process died mid-run

        monkeypatch.setattr(refresh_module, "materialize", killed)
        with pytest.raises(KeyboardInterrupt):
            refresh_module.refresh(bootstrap(world.repo), inbox=world.work / "inbox",
                                   now=day_end(d))
        assert day_end(d).date() not in snapshot_days(RepoPaths(world.repo).scores)
        monkeypatch.undo()
        result = world.refresh(d)
        assert result.exit_code == 0, result.output
        assert world.log_rows() == rows + len(world.daily[d])
        assert day_end(d).date() in snapshot_days(RepoPaths(world.repo).scores)

    def test_a_second_refresh_while_one_runs_exits_clearly_and_does_nothing(self, world):
        d = FIRST_DAILY + 4
        with open(RepoPaths(world.repo).data / ".refresh.lock", "a+") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            result = world.refresh(d)
        assert result.exit_code == 3
        assert "another refresh" in result.output

    def test_stale_data_raises_the_freshness_alarm_and_a_non_zero_exit(self, world):
        d = FIRST_DAILY + 4
        latest = max(frame.timestamp.max() for frame in world.daily.values()
                     if frame.timestamp.max() < pd.Timestamp(day_end(d)))
        lag_hours = (pd.Timestamp(day_end(d)) - latest).total_seconds() / 3600
        stale = world.refresh(d, "--max-lag-hours", str(lag_hours * 0.99))
        assert stale.exit_code == 1
        assert json.loads(stale.stdout)["alarms"]
        fresh = world.refresh(d, "--max-lag-hours", str(lag_hours * 1.01))
        assert fresh.exit_code == 0 and json.loads(fresh.stdout)["alarms"] == []

    def test_score_all_scores_the_snapshot_customers_with_the_same_probabilities(self, world):
        from typer.testing import CliRunner

        from usage_features.cli import app

        d = FIRST_DAILY + 4
        result = CliRunner().invoke(app, ["score", "--all", "--repo", str(world.repo),
                                          "--as-of", day_end(d).isoformat(), "--json"])
        assert result.exit_code == 0, result.output
        scores = [json.loads(line) for line in result.stdout.splitlines()]
        snapshot = read_snapshot(RepoPaths(world.repo).scores, day_end(d).date())
        online = {s["customer_id"]: s["churn_probability"] for s in scores
                  if s["status"] == "active"}
        assert online == dict(zip(snapshot.customer_id, snapshot.churn_probability))
        assert len(scores) == json.loads(world.refresh(d).stdout)["active_customers"]

    def test_every_sink_of_the_context_gets_the_snapshots_scores(self, world):
        from usage_features.service_layer.refresh import refresh

        d = FIRST_DAILY + 4
        context, sink = bootstrap(world.repo), ListScoreSink()
        context.extra_sinks.append(sink)
        summary = refresh(context, inbox=world.work / "inbox", now=day_end(d))
        delivered = sink.days[day_end(d).date()]
        snapshot = read_snapshot(RepoPaths(world.repo).scores, day_end(d).date())
        assert [(s.customer_id, s.churn_probability) for s in delivered] == list(
            zip(snapshot.customer_id, snapshot.churn_probability))
        assert {(s.status, s.features_from, s.as_of) for s in delivered} == {
            ("active", "online", day_end(d))}
        assert summary.delivered == {context.sinks[0].name: len(delivered),
                                     sink.name: len(delivered)}

    def test_the_cyclic_collector_is_paused_for_the_steps_and_restored_after(self, world,
                                                                            monkeypatch):
        import usage_features.service_layer.refresh as refresh_module

        d = FIRST_DAILY + 4
        collecting = []

        class Sink(ListScoreSink):
            def write(self, scores, day):
                collecting.append(gc.isenabled())
                return super().write(scores, day)

        context = bootstrap(world.repo)
        context.extra_sinks.append(Sink())
        assert gc.isenabled()
        refresh_module.refresh(context, inbox=world.work / "inbox", now=day_end(d))
        assert collecting == [False] and gc.isenabled()

        def killed(*args, **kwargs):
            assert not gc.isenabled()
            raise RuntimeError("killed")

        monkeypatch.setattr(refresh_module, "materialize", killed)
        with pytest.raises(RuntimeError, match="killed"):
            refresh_module.refresh(bootstrap(world.repo), inbox=world.work / "inbox",
                                   now=day_end(d))
        assert gc.isenabled()
        gc.disable()  # a caller's own choice is kept
        try:
            monkeypatch.undo()
            refresh_module.refresh(bootstrap(world.repo), inbox=world.work / "inbox",
                                   now=day_end(d))
            assert not gc.isenabled()
        finally:
            gc.enable()

    def test_score_wants_customers_or_all_but_not_both(self, world):
        from typer.testing import CliRunner

        from usage_features.cli import app

        for args in ([], ["cust-00001", "--all"]):
            result = CliRunner().invoke(app, ["score", "--repo", str(world.repo), *args])
            assert result.exit_code == 2 and "--all" in result.output

    def test_a_refresh_without_a_usable_model_fails_before_changing_anything(self, world,
                                                                            tmp_path):
        from usage_features.serving.freshness import freshness

        d = FIRST_DAILY + 5
        world.deliver(d)
        rows, before = world.log_rows(), freshness(world.repo).materialized_through
        result = world.refresh(d, "--model", str(tmp_path / "missing.skops"))
        assert result.exit_code == 2 and "missing.skops" in result.output
        assert world.log_rows() == rows
        assert freshness(world.repo).materialized_through == before

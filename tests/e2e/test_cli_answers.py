"""No silent wrong answers, through the command line: ``score --as-of`` equals ``predict``,
churned and unknown customers get a status and no probability, entity times parse as ingest's,
``events`` shows the served counts, and ``train --customers FILE`` works on its own."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from tests.factories import churn_dataset
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.features.retrieval import historical_features, online_features
from usage_features.features.spec import DAYS_SINCE_LAST_EVENT
from usage_features.features.store import open_store
from usage_features.service_layer.bootstrap import bootstrap
from usage_features.service_layer.train import TrainConfig, training_frame
from usage_features.serving.freshness import freshness
from usage_features.serving.scorer import OnlineTimeError

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A repo trained with ``train --customers FILE`` alone (no load-customers), materialized
    now."""
    work = tmp_path_factory.mktemp("answers")
    repo = copy_feature_repo(work / "feature_repo")
    events, customers = churn_dataset(seed=3)
    events.to_parquet(work / "events.parquet", index=False)
    invoke("ingest", str(work / "events.parquet"), "--repo", str(repo))
    invoke("build", "--repo", str(repo))
    customers.to_csv(work / "customers.csv", index=False)
    invoke("train", "--repo", str(repo), "--customers", str(work / "customers.csv"), "--json")
    shutil.copytree(repo, work / "stale_repo")  # not materialized yet: for `stale` below
    now = datetime.now(UTC)
    invoke("materialize", "--repo", str(repo), "--end", now.isoformat())
    return work, repo, events, customers, now


@pytest.fixture(scope="module")
def stale(trained):
    """A copy of the trained repo whose online store was materialized five days ago."""
    work, _, events, customers, now = trained
    repo = work / "stale_repo"
    invoke("materialize", "--repo", str(repo), "--end", (now - timedelta(days=5)).isoformat())
    return work, repo, events, customers, freshness(repo).materialized_through


def scored_online(repo, ids, as_of: datetime) -> pd.DataFrame:
    lines = invoke("score", *ids, "--repo", str(repo), "--as-of", as_of.isoformat(),
                   "--json").splitlines()
    return pd.DataFrame([json.loads(line) for line in lines])


def predicted(work, repo, rows: pd.DataFrame, name="entities.csv") -> pd.DataFrame:
    rows.to_csv(work / name, index=False)
    invoke("predict", "--entities", str(work / name), "--out", str(work / "scored.csv"),
           "--repo", str(repo))
    return pd.read_csv(work / "scored.csv", dtype={"customer_id": str})


def mixed_ids(customers: pd.DataFrame, now: datetime) -> list[str]:
    churned = customers.customer_id[customers.churned_at <= now - timedelta(days=60)]
    active = customers.customer_id[customers.churned_at.isna()]
    return [*active.head(4), *churned.head(2), "nobody"]


def between_events(events: pd.DataFrame, now: datetime) -> tuple[str, datetime]:
    """A customer and a time halfway between two of its events on different past days."""
    past = events[events.timestamp < now - timedelta(days=20)].sort_values("timestamp")
    for customer, rows in past.groupby("customer_id"):
        times = rows.timestamp.tolist()
        for a, b in itertools.pairwise(times):
            if (b - a) > timedelta(days=2):
                return customer, (a + (b - a) / 2).to_pydatetime()
    raise AssertionError("no gap of two days in the data")


class TestScoreAsOfAgreesWithPredict:
    @pytest.mark.parametrize("when", ["now", "past", "between events"])
    def test_score_as_of_equals_predict_for_the_same_customers_and_time(self, trained, when):
        work, repo, events, customers, now = trained
        ids = mixed_ids(customers, now)
        as_of = {"now": now, "past": now - timedelta(days=41, hours=3)}.get(when)
        if as_of is None:
            customer, as_of = between_events(events, now)
            ids = [customer, *ids]
        online = scored_online(repo, ids, as_of)
        batch = predicted(work, repo, pd.DataFrame({"customer_id": ids,
                                                    "event_timestamp": as_of.isoformat()}))
        assert online.status.tolist() == batch.status.tolist()
        if when != "between events":  # (that time may precede the churns)
            assert set(online.status) == {"active", "churned", "unknown"}
        np.testing.assert_allclose(online.churn_probability.astype(float),
                                   batch.churn_probability.astype(float), rtol=1e-9)
        for column in ("churn_probability_60d", "churn_probability_90d"):
            np.testing.assert_allclose(online[column].astype(float),
                                       batch[column].astype(float), rtol=1e-9)
        live = online[online.status == "active"]
        assert (live.churn_probability <= live.churn_probability_60d).all()
        assert (live.churn_probability_60d <= live.churn_probability_90d).all()

    def test_the_online_scorer_refuses_a_time_off_its_day(self, trained):
        _, repo, _, customers, now = trained
        scorer = bootstrap(repo).scorer
        with pytest.raises(OnlineTimeError, match="not on the online store's day"):
            scorer.score(customers.customer_id.head(2).tolist(), now - timedelta(days=3))


class TestScoreWithoutATime:
    """Without a time, an online store materialized days ago answers as of its own time and
    says so: never the recency of now over the windows of another day."""

    def test_score_answers_as_of_the_online_store_s_time_equal_to_predict_there(self, stale):
        work, repo, events, _, held = stale
        result = runner.invoke(app, ["score", "--all", "--repo", str(repo), "--json"])
        assert result.exit_code == 0, result.output
        online = pd.DataFrame([json.loads(line) for line in result.stdout.splitlines()])
        assert datetime.now(UTC) - held > timedelta(days=4)
        assert set(online.as_of) == {held.isoformat()}
        assert set(online.features_from) == {"online"} and not online.fresh.any()
        assert "answered as of the online store's own time" in result.stderr
        batch = predicted(work, repo, pd.DataFrame({"customer_id": online.customer_id,
                                                    "event_timestamp": held.isoformat()}),
                          name="stale_entities.csv")
        assert online.status.tolist() == batch.status.tolist()
        np.testing.assert_allclose(online.churn_probability.astype(float),
                                   batch.churn_probability.astype(float), rtol=1e-9)
        # the recency scored is the one at the answer's as_of, over that day's windows
        day = held.replace(hour=0, minute=0, second=0, microsecond=0)
        before = events[events.timestamp < day].groupby("customer_id").timestamp.max()
        served = online_features(open_store(repo), online.customer_id.tolist(), held)
        known = served[served.customer_id.isin(before.index)]
        assert len(known) > 10
        np.testing.assert_allclose(
            known[DAYS_SINCE_LAST_EVENT],
            (held - before[known.customer_id]) / timedelta(days=1),
            rtol=0, atol=1 / 86_400)  # (the online store keeps times in whole seconds)

    def test_post_score_without_a_time_gives_the_command_line_s_answer(self, stale):
        from fastapi.testclient import TestClient

        from usage_features.http.app import create_app

        _, repo, _, customers, held = stale
        ids = customers.customer_id.head(6).tolist()
        client = TestClient(create_app(bootstrap(repo).scorer, token=None))
        body = client.post("/score", json={"customer_ids": ids}).json()
        assert "answered as of the online store's own time" in body["note"]
        lines = invoke("score", *ids, "--repo", str(repo), "--json").splitlines()
        assert body["scores"] == [json.loads(line) for line in lines]
        assert {s["as_of"] for s in body["scores"]} == {held.isoformat()}

    def test_the_scorer_answers_as_of_its_own_time_too(self, stale):
        _, repo, _, customers, held = stale
        scores = bootstrap(repo).scorer.score(customers.customer_id.head(3).tolist())
        assert {s.as_of for s in scores} == {held}


class TestChurnedAndUnknownCustomers:
    def test_predict_gives_a_churned_customer_a_status_and_no_probability(self, trained):
        work, repo, _, customers, now = trained
        gone = customers[customers.churned_at <= now - timedelta(days=30)].iloc[0]
        before = gone.churned_at - timedelta(days=2)
        rows = pd.DataFrame({"customer_id": [gone.customer_id, gone.customer_id, "nobody"],
                             "event_timestamp": [before.isoformat(), gone.churned_at.isoformat(),
                                                 now.isoformat()]})
        scored = predicted(work, repo, rows)
        assert scored.status.tolist() == ["active", "churned", "unknown"]
        assert 0 <= scored.churn_probability[0] <= 1
        assert scored.churn_probability[1:].isna().all()

    def test_score_gives_a_churned_customer_a_status_and_no_probability(self, trained):
        _, repo, _, customers, now = trained
        gone = customers[customers.churned_at <= now].customer_id.head(3).tolist()
        online = scored_online(repo, gone, now)
        assert online.status.tolist() == ["churned"] * len(gone)
        assert online.churn_probability.isna().all()


@pytest.fixture(scope="module")
def older_than_history(trained):
    """A copy of the trained repo in which one live customer signed up 42 days before the
    event history starts (the log's first day), its features built and materialized again."""
    work, repo, events, customers, _ = trained
    copy = work / "older_repo"
    shutil.copytree(repo, copy)
    history = events.timestamp.min().floor("D")
    customer = customers.customer_id[customers.churned_at.isna()
                                     & (customers.signup_at < history + timedelta(days=20))
                                     ].iloc[0]
    table = customers.copy()
    # six weeks: the weekly observation grid, from the earliest signup, keeps its days
    table.loc[table.customer_id == customer, "signup_at"] = history - timedelta(days=42)
    table.to_csv(work / "older.csv", index=False)
    invoke("load-customers", str(work / "older.csv"), "--repo", str(copy))
    invoke("build", "--repo", str(copy))
    now = datetime.now(UTC)
    invoke("materialize", "--repo", str(copy), "--end", now.isoformat())
    return work, copy, customer, history.to_pydatetime(), now


class TestCustomersOlderThanTheHistory:
    """Signed up before the event log starts: not scored (and not trained on) until the 90-day
    windows lie in the log; never a probability from windows that miss part of them."""

    def test_predict_and_score_as_of_refuse_until_the_longest_window_fits(
            self, older_than_history):
        work, repo, customer, history, _ = older_than_history
        fits = history + timedelta(days=90)
        times = [history + timedelta(days=30), fits - timedelta(seconds=1), fits]
        rows = pd.DataFrame({"customer_id": customer,
                             "event_timestamp": [t.isoformat() for t in times]})
        scored = predicted(work, repo, rows, name="older.csv")
        assert scored.status.tolist() == ["incomplete", "incomplete", "active"]
        assert scored.churn_probability[:2].isna().all() and scored.churn_probability[2] >= 0
        assert scored.error[0].startswith(
            f"incomplete history: signed up before the event history starts ({history.date()})")
        assert f"scored from {fits.date()} on" in scored.error[0] and pd.isna(scored.error[2])
        online = scored_online(repo, [customer], times[0])  # (the historical path: a past time)
        assert online.status.tolist() == ["incomplete"]
        assert online.error[0] == scored.error[0]

    def test_training_leaves_out_the_same_rows(self, older_than_history, trained):
        _, repo, customer, history, _ = older_than_history
        fits = history + timedelta(days=90)
        frame = training_frame(TrainConfig(repo=repo))
        mine = frame[frame.customer_id == customer].event_timestamp
        assert len(mine) and mine.min() >= fits  # observed from then on
        before = training_frame(TrainConfig(repo=trained[1]))
        theirs = before[before.customer_id == customer].event_timestamp
        assert theirs.min() < fits  # where it signed up within the history, it was observed
        others = frame[frame.customer_id != customer]
        pd.testing.assert_frame_equal(  # the other customers' rows are untouched
            others.reset_index(drop=True),
            before[before.customer_id != customer].reset_index(drop=True))

    def test_train_says_how_many_rows_it_left_out(self, older_than_history):
        work, repo, _, history, _ = older_than_history
        kept = len(training_frame(TrainConfig(repo=repo)))
        result = json.loads(invoke("train", "--repo", str(repo), "--json", "--model-out",
                                   str(work / "older_model.skops")))
        left = result["incomplete_history"]
        assert left["history_from"] == str(history.date())
        assert left["observed_from"] == str((history + timedelta(days=90)).date())
        assert left["rows"] > 0 and left["of_rows"] == kept + left["rows"]

    def test_the_online_scorer_follows_a_declared_history_start(self, older_than_history):
        _, repo, customer, history, now = older_than_history
        scorer = bootstrap(repo).scorer
        assert scorer.score([customer], now)[0].status == "active"
        declared = (now - timedelta(days=10)).date()
        settings = repo / "usage_features.yaml"
        settings.write_text(f"events:\n  complete_from: {declared}\n")
        try:
            score = scorer.score([customer], now)[0]  # the same scorer: it rereads settings
            assert score.status == "incomplete" and score.churn_probability is None
            assert f"scored from {declared + timedelta(days=90)} on" in score.error
            earlier = (history - timedelta(days=42)).date()
            settings.write_text(f"events:\n  complete_from: {earlier}\n")
            assert scorer.score([customer], now)[0].status == "active"
        finally:
            settings.unlink()


class TestEntityTimestamps:
    def test_every_form_ingest_accepts_parses_to_the_same_time_and_score(self, trained):
        work, repo, _, customers, now = trained
        customer = customers.customer_id[customers.churned_at.isna()].iloc[0]
        day = (now - timedelta(days=10)).strftime("%Y-%m-%d")
        forms = [f"{day}T12:00:00Z", f"{day} 12:00:00+00", f"{day}T14:00:00+02:00",
                 f"{day} 12:00:00.000000Z", f"{day}T07:00:00-0500"]
        scored = predicted(work, repo, pd.DataFrame({"customer_id": customer,
                                                     "event_timestamp": forms}))
        assert scored.status.eq("active").all()
        assert pd.to_datetime(scored.event_timestamp, utc=True).nunique() == 1
        assert scored.churn_probability.nunique() == 1

    def test_a_naive_time_is_rejected_with_its_row_and_the_rest_are_scored(self, trained):
        work, repo, _, customers, now = trained
        customer = customers.customer_id[customers.churned_at.isna()].iloc[0]
        day = (now - timedelta(days=10)).strftime("%Y-%m-%d")
        rows = pd.DataFrame({"customer_id": [customer] * 3,
                             "event_timestamp": [f"{day}T12:00:00Z", f"{day} 12:00:00",
                                                 "next tuesday"]})
        rows.to_csv(work / "naive.csv", index=False)
        result = runner.invoke(app, ["predict", "--entities", str(work / "naive.csv"), "--out",
                                     str(work / "naive_scored.csv"), "--repo", str(repo)])
        assert result.exit_code == 0, result.output
        assert "row 2: naive_timestamp" in result.output
        assert "row 3: unparseable_timestamp" in result.output
        scored = pd.read_csv(work / "naive_scored.csv")
        assert scored.status.tolist() == ["active", "invalid", "invalid"]
        assert scored.error[1].startswith("row 2: naive_timestamp")

    def test_a_file_of_only_invalid_times_is_a_clear_error(self, trained):
        work, repo, _, _, _ = trained
        pd.DataFrame({"customer_id": ["a"], "event_timestamp": ["2026-01-05 12:00"]}).to_csv(
            work / "bad.csv", index=False)
        result = runner.invoke(app, ["predict", "--entities", str(work / "bad.csv"), "--out",
                                     str(work / "out.csv"), "--repo", str(repo)])
        assert result.exit_code == 2 and "no valid entity rows" in result.output
        assert "Traceback" not in result.output

    def test_customer_ids_keep_their_leading_zeros(self, trained):
        work, repo, _, _, now = trained
        scored = predicted(work, repo, pd.DataFrame({"customer_id": ["00042"],
                                                     "event_timestamp": [now.isoformat()]}))
        assert scored.customer_id.tolist() == ["00042"]
        assert scored.status.tolist() == ["unknown"]

    def test_times_after_the_latest_event_are_flagged_beyond_the_data(self, trained):
        work, repo, events, customers, _ = trained
        latest = events.timestamp.max()
        customer = customers.customer_id[customers.churned_at.isna()].iloc[0]
        times = [latest - timedelta(hours=1), latest, latest + timedelta(seconds=1)]
        scored = predicted(work, repo, pd.DataFrame({
            "customer_id": customer, "event_timestamp": [t.isoformat() for t in times]}))
        assert scored.beyond_data.tolist() == [False, False, True]


class TestEventsCommand:
    def test_the_counts_shown_are_the_served_counts_and_name_their_window(self, trained):
        _, repo, events, _, _now = trained
        # times an hour after an event on the same day: a rolling window would count it
        sample = events[events.timestamp.dt.hour < 20].sample(6, random_state=1)
        rows = pd.DataFrame({"customer_id": sample.customer_id.to_numpy(),
                             "event_timestamp": sample.timestamp + timedelta(hours=1)})
        served = historical_features(open_store(repo), rows)
        for row, features in zip(rows.itertuples(), served.itertuples()):
            text = invoke("events", row.customer_id, "--repo", str(repo), "--as-of",
                          row.event_timestamp.isoformat())
            text = " ".join(text.split())
            counts = dict(re.findall(r"(\d+)d: (\d+)", text))
            assert (int(counts["7"]), int(counts["30"]), int(counts["90"])) == (
                features.event_count_7d, features.event_count_30d, features.event_count_90d)
            assert f"D = {row.event_timestamp.date()}" in text and "[D - N days, D)" in text


class TestTrainWithCustomersAlone:
    def test_the_customers_file_supplies_the_profile_so_every_row_has_a_tenure(self, trained):
        _work, repo, _, customers, _ = trained
        frame = training_frame(TrainConfig(repo=repo))
        assert frame.tenure_days.notna().all() and (frame.tenure_days >= 0).all()
        loaded = pd.read_parquet(RepoPaths(repo).customers)
        assert sorted(loaded.customer_id) == sorted(customers.customer_id)

    def test_a_file_that_gives_no_labels_leaves_the_repo_customers_table_alone(
            self, trained, tmp_path):
        _, repo, _, customers, _ = trained
        before = RepoPaths(repo).customers.read_bytes()
        customers.assign(churned_at=pd.NaT).to_csv(tmp_path / "loyal.csv", index=False)
        result = runner.invoke(app, ["train", "--repo", str(repo), "--customers",
                                     str(tmp_path / "loyal.csv")])
        assert result.exit_code == 2 and "labels need both classes" in result.output
        assert RepoPaths(repo).customers.read_bytes() == before

    def test_constant_features_are_warned_of_and_null_ones_refused_before_fitting(
            self, tmp_path):
        repo = copy_feature_repo(tmp_path / "feature_repo")
        events, customers = churn_dataset(seed=4, customers=30, days=150)
        events.assign(event_type="login").to_parquet(tmp_path / "events.parquet", index=False)
        customers.to_csv(tmp_path / "customers.csv", index=False)
        invoke("ingest", str(tmp_path / "events.parquet"), "--repo", str(repo))
        invoke("build", "--repo", str(repo))
        result = runner.invoke(app, ["train", "--repo", str(repo), "--customers",
                                     str(tmp_path / "customers.csv")])
        assert result.exit_code == 2, result.output  # only logins: no monitoring_run ever
        text = " ".join(result.output.split())
        assert "warning: served feature(s) constant" in text
        assert "monitoring_run_count_30d (always 0)" in text
        assert "entirely null: " in text and "days_since_last_monitoring_run" in text
        assert "Traceback" not in result.output and not RepoPaths(repo).model.exists()


class TestFreshnessIsReported:
    def test_score_and_predict_report_the_data_behind_the_answer(self, trained):
        work, repo, events, customers, now = trained
        latest = f"data: latest event {events.timestamp.max():%Y-%m-%d %H:%M} UTC"
        customer = customers.customer_id.iloc[0]
        result = runner.invoke(app, ["score", customer, "--repo", str(repo)])
        assert result.exit_code == 0, result.output
        assert latest in result.output and "materialized through" in result.output
        pd.DataFrame({"customer_id": [customer], "event_timestamp": [now.isoformat()]}).to_csv(
            work / "one.csv", index=False)
        result = runner.invoke(app, ["predict", "--entities", str(work / "one.csv"), "--out",
                                     str(work / "one_scored.csv"), "--repo", str(repo)])
        assert result.exit_code == 0 and latest in result.output

    def test_an_event_older_than_the_allowed_lag_is_warned_of(self, trained):
        _, repo, _, customers, _ = trained
        result = runner.invoke(app, ["score", customers.customer_id.iloc[0], "--repo",
                                     str(repo), "--max-lag-hours", "0.001"])
        assert result.exit_code == 0, result.output
        assert "more than the allowed 0.001 h" in result.output

    def test_materialize_past_the_data_is_clamped_and_before_the_store_refused(self, trained):
        _, repo, _, _, now = trained
        result = runner.invoke(app, ["materialize", "--repo", str(repo), "--end",
                                     "2100-01-01T00:00:00"])
        assert result.exit_code == 0, result.output
        assert "2100-01-01T00:00:00+00:00 is later than the data allows (now)" in result.output
        result = runner.invoke(app, ["materialize", "--repo", str(repo), "--end",
                                     (now - timedelta(days=5)).isoformat()])
        assert result.exit_code == 2
        assert "before the online store's current end" in result.output

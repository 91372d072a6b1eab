"""Online features (and scores) equal historical features (and batch predictions) at now.

Also the contract of :mod:`usage_features.adapters.feast.online`: its direct read of the online
store (Feast's private API) equals ``get_online_features`` (the public one), on SQLite (in one
bulk query and in several) and on Redis.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from tests.conftest import copy_feature_repo, populate, require_service
from tests.factories import churn_dataset
from tests.integration.test_point_in_time import assert_features_equal
from usage_features.adapters.feast import online as feast_online
from usage_features.features.retrieval import historical_features, online_features, online_refs
from usage_features.features.store import apply_definitions, open_store
from usage_features.service_layer.bootstrap import bootstrap
from usage_features.service_layer.materialize import materialize
from usage_features.service_layer.predict import predict
from usage_features.service_layer.train import TrainConfig, train
from usage_features.serving import scorer as scorer_module
from usage_features.serving.reasons import ReasonsUnavailableWarning
from usage_features.serving.scorer import UNKNOWN, ChurnScorer
from usage_features.training.compiled import COMPILED_MAX_ROWS
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import load_model, save_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    repo = copy_feature_repo(tmp_path_factory.mktemp("online") / "feature_repo")
    events, customers = churn_dataset(seed=3)
    populate(repo, events, customers)
    train(TrainConfig(repo=repo, importance_repeats=1))
    now = datetime.now(UTC)
    materialize(repo, end=now)
    return repo, customers, now


def at_now(customers: pd.DataFrame, now: datetime) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": customers.customer_id, "event_timestamp": now})


def assert_online_equals_historical(store, customers, now):
    online = online_features(store, customers.customer_id.tolist(), as_of=now)
    historical = historical_features(store, at_now(customers, now))
    assert_features_equal(online, historical)
    assert online["known"].all()


def assert_direct_read_equals_get_online_features(store, customers, now):
    """The adapter's read (the scorer's) against ``get_online_features``."""
    first = customers.customer_id.iloc[0]
    ids = [*customers.customer_id, "no-such-customer", first, first]
    refs = online_refs(store)
    assert refs.views is not None  # the service is read directly
    direct = online_features(store, ids, now, refs)
    through_feast = online_features(store, ids, now, online_refs(store, direct=False))
    pd.testing.assert_frame_equal(direct, through_feast, check_exact=True)
    assert direct.known.tolist() == [True] * len(customers) + [False, True, True]


class TestTheFeastOnlineAdapter:
    def test_reading_the_online_store_directly_equals_get_online_features(self, trained):
        repo, customers, now = trained
        assert_direct_read_equals_get_online_features(open_store(repo), customers, now)

    def test_sqlite_bulk_read_in_several_queries_equals_get_online_features(
            self, trained, monkeypatch):
        repo, customers, now = trained
        monkeypatch.setattr(feast_online, "SQLITE_CHUNK", 3)
        bulk_reads = []
        bulk = feast_online._sqlite_values
        monkeypatch.setattr(feast_online, "_sqlite_values",
                            lambda *args: bulk_reads.append(bulk(*args)) or bulk_reads[-1])
        assert_direct_read_equals_get_online_features(open_store(repo), customers, now)
        assert bulk_reads and None not in bulk_reads  # SQLite is read in bulk, not per view


class TestOnlineParity:
    def test_online_features_equal_historical_features_at_now(self, trained):
        repo, customers, now = trained
        assert_online_equals_historical(open_store(repo), customers, now)

    def test_online_scores_equal_batch_predictions_at_now(self, trained):
        repo, customers, now = trained
        scores = bootstrap(repo).scorer.score(customers.customer_id.tolist(), as_of=now)
        batch = predict(bootstrap(repo), at_now(customers, now))
        assert [s.status for s in scores] == batch.status.tolist()
        assert {"active", "churned"} <= set(batch.status)  # both kinds are compared
        np.testing.assert_allclose(
            [np.nan if s.churn_probability is None else s.churn_probability for s in scores],
            batch.churn_probability.to_numpy(dtype=float, na_value=np.nan), rtol=1e-9)

    def test_scores_do_not_depend_on_how_many_customers_are_scored_together(self, trained):
        repo, customers, now = trained
        scorer = bootstrap(repo).scorer
        ids = customers.customer_id.tolist()
        many = ids * (COMPILED_MAX_ROWS // len(ids) + 1)  # past the compiled trees' batch size
        alone = [(s.churn_probability, s.reasons) for c in ids for s in scorer.score([c], now)]
        together = [(s.churn_probability, s.reasons) for s in scorer.score(many, now)]
        assert together == alone * (len(many) // len(ids))

    def test_a_batch_on_every_core_scores_as_on_one(self, trained, monkeypatch):
        repo, customers, now = trained
        scorer = bootstrap(repo).scorer
        ids = customers.customer_id.tolist() * 3
        limits = []
        limit = scorer._threads.limit
        monkeypatch.setattr(scorer._threads, "limit",
                            lambda **kw: limits.append(kw["limits"]) or limit(**kw))
        one = scorer.score(ids, now)
        monkeypatch.setattr(scorer_module, "PARALLEL_MIN_ROWS", 2)
        every = scorer.score(ids, now)
        assert limits == [1, None]
        assert every == one

    def test_online_reasons_equal_the_historical_paths_at_now(self, trained):
        repo, customers, now = trained
        scorer = bootstrap(repo).scorer
        assert scorer.reasons.available  # train stored the reference values with the model
        ids = customers.customer_id.tolist()
        online = scorer.score(ids, now)
        assert [(s.churn_probability, s.reasons) for s in online] == [
            (s.churn_probability, s.reasons) for s in scorer.score_historical(ids, now)]
        assert sum(bool(s.reasons) for s in online) >= 3

    def test_a_model_saved_without_reference_values_scores_the_same_without_reasons(
            self, trained):
        repo, customers, now = trained
        scorer = bootstrap(repo).scorer
        model = scorer.model
        older = TrainedModel(model.pipeline, replace(model.metadata, reference_values=None))
        with pytest.warns(ReasonsUnavailableWarning, match="retrain"):
            without = ChurnScorer(scorer.store, older, repo=repo)
        ids = customers.customer_id.tolist()
        expected = scorer.score(ids, now)
        got = without.score(ids, now)
        assert [s.churn_probability for s in got] == [s.churn_probability for s in expected]
        assert all(s.reasons == () for s in got) and any(s.reasons for s in expected)

    def test_online_horizons_equal_batch_predictions_and_are_in_order(self, trained):
        repo, customers, now = trained
        scorer = bootstrap(repo).scorer
        assert scorer.model.horizon_days == (60, 90)  # both horizons tested and shipped
        scores = scorer.score(customers.customer_id.tolist(), as_of=now)
        batch = predict(bootstrap(repo), at_now(customers, now))
        for column in ("churn_probability_60d", "churn_probability_90d",
                       "expected_days_to_churn"):
            online = [s.to_dict()[column] for s in scores]
            np.testing.assert_allclose(
                [np.nan if v is None else v for v in online],
                batch[column].to_numpy(dtype=float, na_value=np.nan),
                rtol=1e-9, atol=0.05 if column == "expected_days_to_churn" else 0)
        live = [s for s in scores if s.status == "active"]
        assert live and all(s.churn_probability <= s.to_dict()["churn_probability_60d"]
                            <= s.to_dict()["churn_probability_90d"] for s in live)
        assert all(s.to_dict()["churn_probability_60d"] is None
                   for s in scores if s.status != "active")

    def test_a_model_saved_before_horizons_loads_and_scores_with_them_empty(
            self, trained, tmp_path):
        repo, customers, now = trained
        scorer = bootstrap(repo).scorer
        model = scorer.model
        older = TrainedModel(model.pipeline, replace(model.metadata, horizons={}))
        loaded = load_model(save_model(older, tmp_path / "old.skops"))
        assert loaded.horizons is None
        ids = customers.customer_id.tolist()
        got = ChurnScorer(scorer.store, loaded, repo=repo).score(ids, now)
        assert [s.churn_probability for s in got] == [
            s.churn_probability for s in scorer.score(ids, now)]
        for s in got:
            out = s.to_dict()
            assert out["churn_probability_60d"] is None and out["churn_probability_90d"] is None
            assert out["expected_days_to_churn"] is None

    def test_an_unknown_customer_gets_a_clear_answer_beside_known_ones(self, trained):
        repo, customers, now = trained
        known = customers.customer_id[customers.churned_at.isna()].iloc[0]
        first, unknown = bootstrap(repo).scorer.score([known, "no-such-customer"], now)
        assert first.error is None and 0 <= first.churn_probability <= 1
        assert first.risk_band in {"low", "medium", "high"}
        assert unknown.error == UNKNOWN and unknown.churn_probability is None
        assert (first.status, unknown.status) == ("active", "unknown")

    def test_materializing_again_with_nothing_new_keeps_parity(self, trained):
        repo, customers, now = trained
        materialize(repo, end=now)
        assert_online_equals_historical(open_store(repo), customers, now)


@pytest.mark.redis
class TestRedisOnlineStore:
    def test_redis_online_features_equal_historical_features(self, trained, tmp_path):
        require_service("127.0.0.1", 6379, "Redis", "start redis-server or skip these tests")
        repo, customers, now = trained
        copy = tmp_path / "redis_repo"
        shutil.copytree(repo, copy)
        config = copy / "feature_store.redis.yaml"
        project = f"uf_test_{uuid.uuid4().hex[:8]}"  # keys of this test only
        config.write_text(config.read_text().replace("project: usage_features",
                                                     f"project: {project}"))
        apply_definitions(copy, config.name)
        materialize(copy, end=now, config=config.name)
        store = open_store(copy, config.name)
        try:
            assert_online_equals_historical(store, customers, now)
            assert_direct_read_equals_get_online_features(store, customers, now)
        finally:
            store.teardown()


class TestMaterializeAfterLateEvents:
    def test_rows_a_rebuild_rewrote_in_the_past_reach_the_online_store(self, feature_repo_copy):
        from usage_features.config import RepoPaths
        from usage_features.features.build import build_features
        from usage_features.ingestion import ingest_files

        events, customers = churn_dataset(seed=12, customers=20, days=120)
        recent = events.timestamp >= events.timestamp.max() - pd.Timedelta(days=20)
        late = events[recent & (events.index % 2 == 0)]  # arrive after the first materialize
        populate(feature_repo_copy, events.drop(late.index), customers)
        now = datetime.now(UTC)
        materialize(feature_repo_copy, end=now)

        late.to_parquet(feature_repo_copy / "late.parquet", index=False)
        ingest_files([feature_repo_copy / "late.parquet"], RepoPaths(feature_repo_copy))
        build_features(RepoPaths(feature_repo_copy))
        materialize(feature_repo_copy, end=now)  # same end: only the rebuild's changes are new

        assert_online_equals_historical(open_store(feature_repo_copy), customers, now)

    def test_a_customer_loaded_after_a_materialize_reaches_the_online_store(
            self, feature_repo_copy):
        from usage_features.config import RepoPaths
        from usage_features.features.build import build_features
        from usage_features.ingestion.customers import load_customers

        events, customers = churn_dataset(seed=13, customers=15, days=100)
        populate(feature_repo_copy, events, customers)
        now = datetime.now(UTC)
        materialize(feature_repo_copy, end=now)

        newcomer = pd.DataFrame({"customer_id": ["cust-loaded-later"],
                                 "signup_at": [customers.signup_at.min()],
                                 "churned_at": [pd.NaT], "plan": ["pro"]})
        more = pd.concat([customers, newcomer], ignore_index=True)
        more["churned_at"] = pd.to_datetime(more.churned_at, utc=True)
        more.to_parquet(feature_repo_copy / "more.parquet")
        load_customers(feature_repo_copy / "more.parquet", RepoPaths(feature_repo_copy))
        build_features(RepoPaths(feature_repo_copy))
        materialize(feature_repo_copy, end=now)

        assert_online_equals_historical(open_store(feature_repo_copy), more, now)

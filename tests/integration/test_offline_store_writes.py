"""The offline store's writes: saved datasets, offline writes (push), feature-service logs."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast.errors import SavedDatasetLocationAlreadyExists
from feast.infra.offline_stores.file_source import SavedDatasetFileStorage

from tests.integration.offline_repo import T0, entity_rows, source_rows, write_repo
from usage_features.features.store import apply_definitions, open_store

FEATURES = ["user_stats:score", "user_merchant:amount"]


@pytest.fixture
def store(tmp_path):
    repo = write_repo(tmp_path / "repo", source_rows())
    apply_definitions(repo)
    return open_store(repo)


def job(store):
    return store.get_historical_features(entity_df=entity_rows(source_rows()), features=FEATURES)


class TestPersist:
    def test_a_directory_destination_holds_the_rows_and_reads_back_as_a_saved_dataset(
            self, store):
        expected = job(store).to_df()
        store.create_saved_dataset(from_=job(store), name="training",
                                   storage=SavedDatasetFileStorage(path="saved/training"))
        directory = store.repo_path / "saved" / "training"
        assert directory.is_dir()
        assert pq.read_table(directory).num_rows == len(expected)
        back = store.get_saved_dataset("training").to_df()[list(expected.columns)]
        columns = list(expected.columns)
        pd.testing.assert_frame_equal(back.sort_values(columns).reset_index(drop=True),
                                      expected.sort_values(columns).reset_index(drop=True))

    @pytest.mark.parametrize("path", ["saved/one.parquet", "saved/dir"])
    def test_an_existing_destination_is_refused_with_feasts_error_and_left_alone(
            self, store, path):
        storage = SavedDatasetFileStorage(path=path)
        job(store).persist(storage)
        before = pq.read_table(store.repo_path / path)
        with pytest.raises(SavedDatasetLocationAlreadyExists):
            job(store).persist(storage)
        assert pq.read_table(store.repo_path / path).equals(before)

    def test_overwriting_when_allowed_replaces_the_rows(self, store):
        storage = SavedDatasetFileStorage(path="saved/dir")
        job(store).persist(storage)
        one_row = store.get_historical_features(
            entity_df=entity_rows(source_rows()).iloc[:1], features=FEATURES)
        one_row.persist(storage, allow_overwrite=True)
        assert pq.read_table(store.repo_path / "saved" / "dir").num_rows == 1


def new_purchase(amount: float, seconds: float = 30) -> pd.DataFrame:
    return pd.DataFrame({"user_id": ["u9"], "merchant_id": [1],
                         "ts": [T0 + timedelta(seconds=seconds)], "amount": [amount]})


class TestOfflineWrites:
    def test_rows_written_to_a_directory_source_are_retrieved(self, store):
        store.write_to_offline_store("user_merchant", new_purchase(12.5))
        entity = pd.DataFrame({"user_id": ["u9"], "merchant_id": [1],
                               "event_timestamp": [T0 + timedelta(seconds=31)]})
        out = store.get_historical_features(entity_df=entity,
                                            features=["user_merchant:amount"]).to_df()
        assert out.amount.tolist() == [12.5]

    def test_rows_appended_to_a_file_source_keep_the_old_ones(self, store):
        path = store.repo_path / "data" / "user_stats.parquet"
        before = pq.read_table(path).num_rows
        row = pd.DataFrame({"user_id": ["u9"], "ts": [T0 + timedelta(seconds=40)],
                            "created": [T0 + timedelta(seconds=40)], "raw_score": [0.5],
                            "visits": [3]})
        store.write_to_offline_store("user_stats", row)
        assert pq.read_table(path).num_rows == before + 1
        entity = pd.DataFrame({"user_id": ["u9"], "event_timestamp": [T0 + timedelta(minutes=1)]})
        out = store.get_historical_features(entity_df=entity, features=["user_stats:score"])
        assert out.to_df().score.tolist() == [0.5]

    def test_a_batch_of_the_wrong_type_is_refused_and_nothing_is_written(self, store):
        directory = store.repo_path / "data" / "user_merchant"
        files = sorted(directory.iterdir())
        bad = new_purchase(1.0).assign(amount=["lots"])
        view = store.get_feature_view("user_merchant")
        with pytest.raises(ValueError, match="existing schema"):
            store._get_provider().offline_store.offline_write_batch(
                store.config, view, pa.Table.from_pandas(bad, preserve_index=False), None)
        assert sorted(directory.iterdir()) == files


class TestFeatureLogging:
    def test_logged_rows_land_as_a_parquet_file_under_the_destination(self, store, tmp_path):
        from feast import FeatureService
        from feast.feature_logging import LoggingConfig
        from feast.infra.offline_stores.file_source import FileLoggingDestination

        service = FeatureService(
            name="logged", features=[store.get_feature_view("user_stats")],
            logging_config=LoggingConfig(destination=FileLoggingDestination(path="logs")))
        store.apply([service])
        logs = pa.table({"user_id": ["u1", "u2"], "score": [0.1, 0.2]})
        store.write_logged_features(logs, source=store.get_feature_service("logged"))
        written = pq.read_table(store.repo_path / "logs")
        assert written.column("score").to_pylist() == [0.1, 0.2]

"""The offline store's writes: saved datasets, offline writes (push), feature-service logs."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast.errors import SavedDatasetLocationAlreadyExists
from feast.infra.offline_stores.file_source import SavedDatasetFileStorage

from tests.integration.offline_repo import (
    STORE_TYPE,
    T0,
    entity_rows,
    source_rows,
    write_repo,
)
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


DRIVER_DEFINITIONS = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
driver_stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(hours=2),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="driver_id", dtype=Int64)],
    source=FileSource(name="driver_src", path={path!r},
                      timestamp_field="event_timestamp", created_timestamp_column="created"))
'''


def float32_driver_repo(repo, offline_store: str):
    """Feast's universal ``driver_stats`` in small: a Float32 feature over a float32 column."""
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        "project: float_width\nprovider: local\nregistry: data/registry.db\n"
        "online_store: {type: sqlite, path: data/online.db}\n"
        f"offline_store: {{type: {offline_store}}}\nentity_key_serialization_version: 3\n")
    # an absolute path: Feast's duckdb store reads a relative one from the cwd when appending
    path = str((repo / "data" / "driver.parquet").resolve())
    (repo / "definitions.py").write_text(DRIVER_DEFINITIONS.format(path=path))
    pd.DataFrame({"event_timestamp": [T0], "driver_id": [5], "created": [T0],
                  "conv_rate": np.array([0.5], dtype=np.float32)}
                 ).to_parquet(path)
    apply_definitions(repo)
    store = open_store(repo)
    stamps = [T0 + timedelta(hours=h) for h in (1, 2, 3)]
    # float64 values into the float32 column, as Feast's test writes them
    store.write_to_offline_store("driver_stats", pd.DataFrame({
        "event_timestamp": stamps, "driver_id": [9001] * 3, "created": stamps,
        "conv_rate": [0.1, 0.2, 0.3]}), allow_registry_cache=False)
    return store, stamps


@pytest.fixture(scope="module")
def retrieved(tmp_path_factory):
    """Per store: the conv_rate retrieved for Feast's test's three rows, and the file's type."""
    out = {}
    for name, store_type in [("asof", STORE_TYPE), ("duckdb", "duckdb"), ("file", "file")]:
        store, stamps = float32_driver_repo(tmp_path_factory.mktemp(name), store_type)
        entity = pd.DataFrame({"driver_id": [9001] * 3, "event_timestamp": stamps})
        frame = store.get_historical_features(entity_df=entity,
                                              features=["driver_stats:conv_rate"]).to_df()
        column = pq.read_table(store.repo_path / "data" / "driver.parquet").schema.field(
            "conv_rate").type
        out[name] = (frame.conv_rate, column)
    return out


class TestFloat64WrittenToAFloat32Source:
    """Feast's universal ``test_non_entity_mode_preserves_multiple_timestamps`` (Ray-only in
    Feast 0.67) writes the float64 ``0.1`` to ``conv_rate`` (Float32 over a float32 Parquet
    column) and expects ``0.1`` back; this store returns ``float32(0.1)`` (0.10000000149 as a
    Python float). So do Feast's ``duckdb`` and ``file`` stores: both cast appended rows to the
    existing file's schema (``table.cast(prev_table.schema)``), as this store does."""

    def test_the_values_and_the_file_column_are_those_of_feasts_duckdb_and_file_stores(
            self, retrieved):
        values, column = retrieved["asof"]
        assert column == pa.float32()
        assert values.tolist() == np.array([0.1, 0.2, 0.3], dtype=np.float32).tolist()
        for feast_store in ("duckdb", "file"):
            theirs, their_column = retrieved[feast_store]
            assert their_column == column, feast_store
            pd.testing.assert_series_equal(values, theirs, obj=feast_store)

    def test_without_entity_rows_each_written_timestamp_is_a_row(self, tmp_path):
        """The rest of Feast's test: one row per (driver, timestamp), not one per driver."""
        store, stamps = float32_driver_repo(tmp_path / "repo", STORE_TYPE)
        out = store.get_historical_features(
            features=["driver_stats:conv_rate"], start_date=stamps[0] - timedelta(minutes=1),
            end_date=stamps[-1] + timedelta(minutes=1)).to_df()
        out = out[out.driver_id == 9001].sort_values("event_timestamp")
        assert out.event_timestamp.tolist() == stamps
        assert out.conv_rate.tolist() == np.array([0.1, 0.2, 0.3], dtype=np.float32).tolist()

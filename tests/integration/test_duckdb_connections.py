"""Every DuckDB connection the project opens is closed when the operation returns.

``duckdb.connect`` is wrapped to keep each connection it makes; the test holds them, so none is
closed by the garbage collector: one still open afterwards was left open by the code.
"""

from __future__ import annotations

import gc
from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from tests.conftest import copy_feature_repo, populate
from tests.factories import churn_dataset
from usage_features.config import RepoPaths


@pytest.fixture
def opened(monkeypatch) -> list[duckdb.DuckDBPyConnection]:
    """The connections ``duckdb.connect`` makes from now on."""
    made: list[duckdb.DuckDBPyConnection] = []
    real = duckdb.connect

    def connect(*args, **kwargs):
        con = real(*args, **kwargs)
        made.append(con)
        return con

    monkeypatch.setattr(duckdb, "connect", connect)
    return made


def still_open(connections) -> int:
    count = 0
    for con in connections:
        try:
            con.execute("SELECT 1").fetchall()
        except duckdb.ConnectionException:
            continue
        count += 1
    return count


@pytest.fixture(scope="module")
def data():
    events, customers = churn_dataset(seed=5, customers=15, days=80)
    return events, customers


@pytest.fixture(scope="module")
def repo(data, tmp_path_factory):
    repo = copy_feature_repo(tmp_path_factory.mktemp("conn") / "feature_repo")
    populate(repo, *data)
    return repo


class TestConnectionsAreClosed:
    def test_ingest_load_customers_and_build(self, data, opened, tmp_path):
        repo = copy_feature_repo(tmp_path / "feature_repo")
        populate(repo, *data)  # ingest, load-customers, build (engine, profile), apply
        assert len(opened) >= 4
        assert still_open(opened) == 0

    def test_the_training_data_end_and_freshness(self, repo, opened):
        from usage_features.service_layer.train import data_end
        from usage_features.serving.freshness import freshness, latest_event_at

        paths = RepoPaths(repo)
        end = data_end(paths)
        assert latest_event_at(paths) == end
        freshness(repo, end + timedelta(hours=1), online=False)
        assert opened
        assert still_open(opened) == 0

    @pytest.mark.parametrize("memory_rows", [0, None])
    def test_historical_retrieval_closes_its_job_s_connection(self, repo, data, opened,
                                                              monkeypatch, memory_rows):
        from usage_features.adapters.feast_offline_store import point_in_time as pit
        from usage_features.features.retrieval import historical_features
        from usage_features.features.store import open_store

        if memory_rows is not None:  # no view joined in memory: DuckDB joins them
            monkeypatch.setattr(pit, "MEMORY_ROWS", memory_rows)
        events, _ = data
        rows = pd.DataFrame({"customer_id": events.customer_id.unique()[:5],
                             "event_timestamp": events.timestamp.max()})
        frame = historical_features(open_store(repo), rows)
        assert len(frame) == 5
        # these views are small: in memory, no connection is opened at all
        assert bool(opened) == (memory_rows is not None)
        assert still_open(opened) == 0

    def test_a_retrieval_job_left_unclosed_is_closed_when_collected(self, repo, data, opened,
                                                                    monkeypatch):
        from usage_features.adapters.feast_offline_store import point_in_time as pit
        from usage_features.features.retrieval import SERVICE_NAME
        from usage_features.features.store import open_store

        monkeypatch.setattr(pit, "MEMORY_ROWS", 0)  # joined by DuckDB: a connection to close
        events, _ = data
        store = open_store(repo)
        rows = pd.DataFrame({"customer_id": events.customer_id.unique()[:3],
                             "event_timestamp": events.timestamp.max()})
        job = store.get_historical_features(entity_df=rows,
                                            features=store.get_feature_service(SERVICE_NAME))
        job.to_df()
        assert still_open(opened) == 1  # the job's, for as long as the job lives
        del job
        gc.collect()
        assert still_open(opened) == 0

    def test_entity_rows_and_the_vocabulary_count(self, repo, data, opened, tmp_path):
        from usage_features.ingestion.vocabulary_proposal import count_event_names
        from usage_features.serving.entities import read_entities

        events, _ = data
        path = tmp_path / "rows.csv"
        pd.DataFrame({"customer_id": ["a", "b"],
                      "event_timestamp": ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]}
                     ).to_csv(path, index=False)
        assert len(read_entities(path).rows) == 2
        source = tmp_path / "events.parquet"
        events.head(50).to_parquet(source, index=False)
        count_event_names([source])
        assert len(opened) >= 2
        assert still_open(opened) == 0

    def test_a_connection_whose_settings_fail_is_closed(self, opened, monkeypatch):
        from usage_features.adapters.duckdb_connection import MEMORY_LIMIT_VARIABLE, connect

        monkeypatch.setenv(MEMORY_LIMIT_VARIABLE, "lots")
        with pytest.raises(ValueError, match="not a memory size"):
            connect()
        assert len(opened) == 1
        assert still_open(opened) == 0

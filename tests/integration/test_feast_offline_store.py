"""The DuckDB ASOF offline store as a general Feast plugin, on a tiny repo of its own."""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from usage_features.features.store import apply_definitions, open_store

T = datetime(2026, 3, 1, tzinfo=UTC)

DEFINITIONS = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
plain = FeatureView(
    name="plain", entities=[user], ttl=timedelta(0),
    schema=[Field(name="score", dtype=Float64)],
    source=FileSource(name="plain_src", path="data/plain.parquet", timestamp_field="ts",
                      created_timestamp_column="created", field_mapping={"raw_score": "score"}))
fresh = FeatureView(
    name="fresh", entities=[user], ttl=timedelta(hours=1),
    schema=[Field(name="clicks", dtype=Int64)],
    source=FileSource(name="fresh_src", path="data/fresh", timestamp_field="ts"))
'''


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    repo = tmp_path_factory.mktemp("plugin")
    (repo / "data" / "fresh").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(textwrap.dedent("""
        project: plugin_test
        provider: local
        registry: data/registry.db
        online_store: {type: sqlite, path: data/online.db}
        offline_store:
          type: usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore
        entity_key_serialization_version: 3
    """))
    (repo / "definitions.py").write_text(DEFINITIONS)
    pd.DataFrame({
        "user_id": ["a", "a", "a", "b"],
        "ts": [T, T, T + timedelta(days=2), T],
        "created": [T, T + timedelta(minutes=5), T + timedelta(days=2), T],
        "raw_score": [1.0, 2.0, 3.0, 9.0],
    }).to_parquet(repo / "data" / "plain.parquet")
    for i, day in enumerate((0, 1)):  # a directory source of two files
        pd.DataFrame({"user_id": ["a"], "ts": [T + timedelta(days=day)],
                      "clicks": [10 + i]}).to_parquet(repo / "data" / "fresh" / f"{i}.parquet")
    apply_definitions(repo)
    return open_store(repo)


def fetch(store, rows, **kwargs):
    entity = pd.DataFrame(rows, columns=["user_id", "event_timestamp"])
    return store.get_historical_features(
        entity_df=entity, features=["plain:score", "fresh:clicks"], **kwargs).to_df()


class TestDuckDBAsOfOfflineStore:
    def test_to_df_is_feast_s_to_df_frame_for_frame(self, store):
        from feast.infra.offline_stores.offline_store import RetrievalJob

        entity = pd.DataFrame([("a", T), ("b", T), ("a", T + timedelta(days=3)), ("c", T)],
                              columns=["user_id", "event_timestamp"]).iloc[[3, 1, 0, 2]]
        job = store.get_historical_features(entity_df=entity,
                                            features=["plain:score", "fresh:clicks"])
        ours = job.to_df()
        pd.testing.assert_frame_equal(ours, RetrievalJob.to_df(job))
        assert isinstance(ours.index, pd.RangeIndex) and list(ours.index) == [0, 1, 2, 3]

    def test_takes_the_latest_row_at_or_before_each_entity_time(self, store):
        out = fetch(store, [("a", T), ("a", T + timedelta(days=1)), ("a", T + timedelta(days=3))])
        assert out.score.tolist() == [2.0, 2.0, 3.0]

    def test_keeps_entity_rows_before_the_first_feature_row_in_order(self, store):
        out = fetch(store, [("b", T), ("a", T - timedelta(days=1)), ("zz", T)])
        assert out.user_id.tolist() == ["b", "a", "zz"]
        assert out.score.isna().tolist() == [False, True, True]

    def test_the_latest_created_row_wins_among_equal_timestamps(self, store):
        assert fetch(store, [("a", T + timedelta(hours=1))]).score.tolist() == [2.0]

    def test_a_row_older_than_the_ttl_is_not_used(self, store):
        out = fetch(store, [("a", T + timedelta(minutes=30)), ("a", T + timedelta(hours=2))])
        assert out.clicks.tolist()[0] == 10
        assert pd.isna(out.clicks.tolist()[1])

    def test_reads_every_file_of_a_directory_source(self, store):
        out = fetch(store, [("a", T + timedelta(days=1, minutes=1))])
        assert out.clicks.tolist() == [11]

    def test_full_feature_names_prefix_the_view(self, store):
        out = fetch(store, [("a", T)], full_feature_names=True)
        assert {"plain__score", "fresh__clicks"} <= set(out.columns)

    def test_materializes_the_latest_row_per_entity(self, store):
        store.materialize(T - timedelta(days=1), T + timedelta(days=5))
        online = store.get_online_features(features=["plain:score"],
                                           entity_rows=[{"user_id": "a"}, {"user_id": "b"}])
        assert online.to_dict()["score"] == [3.0, 9.0]


def test_applying_a_repo_leaves_the_working_directory_alone(store, tmp_path):
    before = os.getcwd()
    apply_definitions(Path(store.repo_path))
    assert os.getcwd() == before

"""Stored and read paths: a copied repo's registry re-pointed at the copy; paths read literally."""

from __future__ import annotations

from pathlib import Path

import pytest
from feast.protos.feast.core.Registry_pb2 import Registry

from usage_features.adapters.duckdb_connection import (
    connect,
    literal_path,
    parquet_list,
    sql_string,
)
from usage_features.adapters.feast.registry import repoint_copied_registries
from usage_features.config import CUSTOMER_PROFILE_TABLE, CUSTOMER_USAGE_TABLE

CONFIG = """project: usage_features
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online_store.db
"""


def registry_from(original: str) -> Registry:
    """What a repo built at ``original`` stores: absolute online-table and Spark paths."""
    proto = Registry()
    table = proto.infra.infra_objects.add()
    table.infra_object_class_type = "feast.infra.online_stores.sqlite.SqliteTable"
    table.sqlite_table.path = f"{original}/data/online_store.db"
    table.sqlite_table.name = "usage_features_customer_usage"
    spark = proto.data_sources.add()
    spark.name = "customer_usage_source"
    spark.spark_options.path = f"{original}/{CUSTOMER_USAGE_TABLE}"
    relative = proto.data_sources.add()
    relative.name = "customer_profile_source"
    relative.file_options.uri = CUSTOMER_PROFILE_TABLE
    shared = proto.data_sources.add()
    shared.name = "shared"
    shared.file_options.uri = "/srv/shared/table.parquet"
    view = proto.feature_views.add()
    view.spec.name = "customer_usage"
    view.spec.batch_source.spark_options.path = f"{original}/{CUSTOMER_USAGE_TABLE}"
    return proto


@pytest.fixture
def copied(tmp_path) -> Path:
    repo = tmp_path / "copy"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(CONFIG)
    (repo / "data" / "registry.db").write_bytes(
        registry_from("/home/someone/original").SerializeToString())
    return repo


class TestACopiedRegistry:
    def test_its_online_tables_and_spark_sources_are_re_pointed_at_the_copy(self, copied):
        assert repoint_copied_registries(copied) == [copied / "data" / "registry.db"]
        proto = Registry.FromString((copied / "data" / "registry.db").read_bytes())
        assert proto.infra.infra_objects[0].sqlite_table.path == str(
            copied / "data" / "online_store.db")
        assert proto.data_sources[0].spark_options.path == str(
            copied / CUSTOMER_USAGE_TABLE)
        assert proto.feature_views[0].spec.batch_source.spark_options.path == str(
            copied / CUSTOMER_USAGE_TABLE)

    def test_relative_paths_and_paths_outside_a_repo_are_kept(self, copied):
        repoint_copied_registries(copied)
        proto = Registry.FromString((copied / "data" / "registry.db").read_bytes())
        assert proto.data_sources[1].file_options.uri == CUSTOMER_PROFILE_TABLE
        assert proto.data_sources[2].file_options.uri == "/srv/shared/table.parquet"

    def test_a_registry_already_pointing_here_is_not_rewritten(self, copied):
        repoint_copied_registries(copied)
        before = (copied / "data" / "registry.db").stat().st_mtime_ns
        assert repoint_copied_registries(copied) == []
        assert (copied / "data" / "registry.db").stat().st_mtime_ns == before

    def test_a_repo_without_a_registry_is_left_alone(self, tmp_path):
        (tmp_path / "feature_store.yaml").write_text(CONFIG)
        assert repoint_copied_registries(tmp_path) == []
        assert not (tmp_path / "data").exists()


class TestLiteralPaths:
    @pytest.mark.parametrize("name", ["ev*.parquet", "e?.parquet", "[ab].parquet",
                                      "it's.parquet", "x{a,b}.parquet"])
    def test_a_file_is_read_by_its_own_name_only(self, tmp_path, name):
        con = connect()
        for i, other in enumerate(["ev1.parquet", "ea.parquet", "a.parquet", name]):
            con.execute(f"COPY (SELECT {i} AS x) TO {sql_string(tmp_path / other)}")
        rows = con.execute(
            f"SELECT x FROM read_parquet({parquet_list([tmp_path / name])})").fetchall()
        assert rows == [(3,)]

    def test_a_path_with_a_backslash_and_a_glob_character_is_refused(self):
        with pytest.raises(ValueError, match="backslash"):
            literal_path("/data/a\\b*.parquet")
        assert literal_path("/data/a\\b.parquet") == "/data/a\\b.parquet"

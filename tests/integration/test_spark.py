"""The Spark build and Feast's Spark offline store give the DuckDB defaults' results exactly."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import copy_feature_repo, populate, require_service, services_required
from tests.integration.test_online_parity import assert_online_equals_historical
from tests.integration.test_point_in_time import assert_features_equal, entity_rows
from usage_features.config import RepoPaths
from usage_features.features.build import build_features
from usage_features.features.retrieval import historical_features
from usage_features.features.store import apply_definitions, open_store
from usage_features.ingestion import ingest_files
from usage_features.service_layer.materialize import materialize
from usage_features.simulation import SimulationConfig, simulate

pytestmark = pytest.mark.spark
SPARK_CONFIG = "feature_store.spark.yaml"


def require_spark() -> None:
    """Skip, saying why, without PySpark or a Java runtime (fail where they are required)."""
    import importlib.util

    missing = []
    if importlib.util.find_spec("pyspark") is None:
        missing.append("PySpark (pip install -e '.[spark]')")
    if shutil.which("java") is None:
        missing.append("a Java 17+ runtime (apt-get install openjdk-17-jre-headless)")
    if missing:
        message = f"Spark tests need {' and '.join(missing)}"
        if services_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    require_spark()
    sim = simulate(SimulationConfig(customers=80, days=150, seed=5))
    events = sim.events.to_pandas()
    return events, sim.customers.to_pandas(), tmp_path_factory.mktemp("spark")


def tables(paths: RepoPaths) -> dict[str, pd.DataFrame]:
    keys = ["customer_id", "day"]
    return {
        "customer_usage": pd.read_parquet(paths.customer_usage).sort_values(keys),
        "daily": pd.read_parquet(paths.daily).sort_values(keys),
        "customer_profile": pd.read_parquet(paths.customer_profile),
    }


def build(events: pd.DataFrame, customers: pd.DataFrame, repo: Path, engine: str,
          batches: int = 1, settings: str | None = None) -> RepoPaths:
    """Ingest ``events`` in ``batches`` (late, out-of-order events included), building after
    each one with ``engine``; ``settings``: the repo's usage_features.yaml."""
    from usage_features.ingestion.customers import load_customers

    paths = RepoPaths(copy_feature_repo(repo))
    if settings is not None:
        (repo / "usage_features.yaml").write_text(settings)
    customers.to_parquet(repo / "customers.parquet")
    load_customers(repo / "customers.parquet", paths)
    batch = np.random.default_rng(1).integers(0, batches, len(events))
    for b in range(batches):
        source = repo / f"batch{b}.parquet"
        events[batch == b].to_parquet(source, index=False)
        ingest_files([source], paths)
        build_features(paths, engine=engine)
    return paths


def assert_tables_equal(actual: dict, expected: dict) -> None:
    """Same rows, columns and types; integers and timestamps exact, floats and decimals to
    1e-12. The daily score sum is an exact decimal sum in both engines, but of scores each
    engine turns into decimals its own way: DuckDB from the double's binary value
    (2.014800000000000256), Spark from its shortest text (2.0148)."""
    for name in expected:
        got, want = (as_floats(t[name]).reset_index(drop=True) for t in (actual, expected))
        pd.testing.assert_frame_equal(got, want, obj=name, rtol=1e-12, atol=0)


def as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its decimal columns (Python ``Decimal`` objects) as floats."""
    decimals = [c for c in frame if frame[c].dtype == object
                and frame[c].map(lambda v: isinstance(v, Decimal)).any()]
    return frame.astype(dict.fromkeys(decimals, float))


class TestSparkBuild:
    # 37 s; run with `make test-all` (passed 2026-12-06): in CI the cluster's full build
    # (test_spark_cluster.py) and the incremental one below stand for it
    @pytest.mark.slow
    def test_spark_build_equals_duckdb_build_row_for_row(self, simulated):
        events, customers, work = simulated
        duckdb = build(events, customers, work / "duckdb", "duckdb")
        spark = build(events, customers, work / "spark", "spark")

        assert_tables_equal(tables(spark), tables(duckdb))
        assert len(tables(spark)["customer_usage"]) > 1000

    def test_a_repo_path_with_quotes_and_glob_characters_builds_the_same(self, simulated):
        events, customers, work = simulated
        (work / "its a repo").mkdir()  # what the path would match as a glob: must stay unread
        plain = build(events, customers, work / "plain", "duckdb", batches=2)
        odd = build(events, customers, work / "it's {a,b} [x] repo*?", "spark", batches=2)
        assert_tables_equal(tables(odd), tables(plain))

    @pytest.mark.slow  # 90 s; run with `make test-all` (passed 2026-12-03)
    def test_a_declared_vocabulary_builds_the_same_in_spark_incrementally(self, simulated):
        import pyarrow as pa

        from usage_features.simulation.foreign import (
            as_foreign_export,
            crm_vocabulary,
            foreign_settings_yaml,
        )

        events, customers, work = simulated
        vocabulary = crm_vocabulary(25)
        export = as_foreign_export(pa.Table.from_pandas(events, preserve_index=False),
                                   vocabulary, seed=5).to_pandas()
        export.loc[export.index % 13 == 0, "event_type_name"] = "export_pdf"  # "other"
        settings = foreign_settings_yaml(vocabulary).replace("unlisted: reject",
                                                             "unlisted: other")
        settings = settings[:settings.index("customers:")]  # the accounts are loaded as they are
        accounts = customers.assign(customer_id=customers.customer_id.str.removeprefix(
            "cust-").astype(int).astype(str))
        # the same three deliveries (identical rows split between two deliveries are one
        # event: the second delivery repeats the first's row), built by each engine
        duckdb = build(export, accounts, work / "crm_duckdb", "duckdb", batches=3,
                       settings=settings)
        spark = build(export, accounts, work / "crm_spark", "spark", batches=3,
                      settings=settings)
        assert "other_count_30d" in tables(duckdb)["customer_usage"]
        assert_tables_equal(tables(spark), tables(duckdb))

    # 34 s; run with `make test-all` (passed 2026-12-06): in CI the path test above builds
    # incrementally in Spark too, and the cluster's refresh (test_spark_cluster.py) a day
    @pytest.mark.slow
    def test_incremental_spark_builds_equal_a_full_duckdb_build(self, simulated):
        events, customers, work = simulated
        full = build(events, customers, work / "full", "duckdb")
        incremental = build(events, customers, work / "incremental", "spark", batches=3)

        assert_tables_equal(tables(incremental), tables(full))

    def test_a_process_running_spark_locally_refuses_to_build_on_another_master(self, simulated):
        from usage_features.adapters.spark_session import spark_session

        events, customers, work = simulated
        paths = build(events, customers, work / "elsewhere", "duckdb")
        spark_session()  # this process's session: local

        with pytest.raises(RuntimeError, match="already runs a Spark session on local"):
            build_features(paths, engine="spark", spark_master="spark://127.0.0.1:7077")
        with pytest.raises(ValueError, match="spark_master is for the spark engine"):
            build_features(paths, engine="duckdb", spark_master="spark://127.0.0.1:7077")


@pytest.fixture(scope="module")
def spark_repo(simulated):
    """A populated repo, also applied with the Spark config (its own Redis project)."""
    events, customers, work = simulated
    repo = copy_feature_repo(work / "retrieval")
    populate(repo, events, customers)
    config = repo / SPARK_CONFIG
    project = f"uf_test_{uuid.uuid4().hex[:8]}"  # keys of this module only
    config.write_text(config.read_text().replace("project: usage_features", f"project: {project}"))
    apply_definitions(repo, SPARK_CONFIG)
    return repo, events, customers


class TestSparkOfflineStore:
    def test_historical_features_through_spark_equal_the_default_stores(self, spark_repo):
        repo, events, _ = spark_repo
        entity = entity_rows(events, seed=8, n=200)
        expected = historical_features(open_store(repo), entity)

        store = open_store(repo, SPARK_CONFIG)
        actual = historical_features(store, entity)

        assert type(store.get_data_source("customer_usage_source")).__name__ == "SparkSource"
        pd.testing.assert_frame_equal(actual[["customer_id", "event_timestamp"]],
                                      expected[["customer_id", "event_timestamp"]])
        assert_features_equal(actual, expected)

    @pytest.mark.redis
    def test_materialized_through_spark_into_redis_online_equals_historical(self, spark_repo):
        require_service("127.0.0.1", 6379, "Redis", "start redis-server or skip these tests")
        repo, _, customers = spark_repo
        now = datetime.now(UTC)
        materialize(repo, end=now, config=SPARK_CONFIG)
        store = open_store(repo, SPARK_CONFIG)
        try:
            assert_online_equals_historical(store, customers, now)
        finally:
            store.teardown()

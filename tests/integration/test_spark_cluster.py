"""`usage-features build --engine spark` on a real Spark standalone cluster (a master and two
workers, separate processes and, where the machine allows, separate network hosts) writes the
DuckDB build's tables, with its tasks run by both workers; `refresh --engine spark` on it writes
the day's tables a DuckDB refresh writes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.conftest import copy_feature_repo
from tests.daily_world import FIRST_DAILY, day_end, make_world
from tests.integration.spark_cluster import spark_cluster
from tests.integration.test_spark import (
    SPARK_CONFIG,
    assert_tables_equal,
    require_spark,
    tables,
)
from usage_features.config import RepoPaths
from usage_features.features.build import build_features
from usage_features.ingestion import ingest_files
from usage_features.ingestion.customers import load_customers
from usage_features.simulation import SimulationConfig, simulate

pytestmark = pytest.mark.spark
WORKERS = 2


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The driver's directory: the workers see only its ``spark/data`` (when they can be
    given their own mount namespaces)."""
    require_spark()
    return tmp_path_factory.mktemp("driver")


@pytest.fixture(scope="module")
def cluster(workspace, tmp_path_factory):
    repo_data = RepoPaths(workspace / "spark").data
    with spark_cluster(tmp_path_factory.mktemp("cluster"), hidden=workspace, shared=repo_data,
                       workers=WORKERS, cores=1, memory="768m") as running:
        if running.isolation.startswith("loopback"):
            warnings.warn(f"Spark cluster test on {running.isolation}", stacklevel=1)
        yield running


def new_repo(repo: Path, customers) -> RepoPaths:
    paths = RepoPaths(copy_feature_repo(repo))
    customers.to_parquet(repo / "customers.parquet")
    load_customers(repo / "customers.parquet", paths)
    return paths


def ingest(paths: RepoPaths, events) -> None:
    source = paths.repo / "events.parquet"
    events.to_parquet(source, index=False)
    ingest_files([source], paths)


def cluster_spark_conf(repo: Path, event_log: Path) -> None:
    """The repo's Spark config, plus Spark's own event log (which executor ran which task)
    and executors sized for two 768 MiB workers."""
    path = repo / SPARK_CONFIG
    config = yaml.safe_load(path.read_text())
    config["offline_store"]["spark_conf"].update({
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": event_log.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.executor.memory": "512m",
        "spark.sql.shuffle.partitions": "4",
        # short-lived JVMs on a shared machine: the quick JIT compiler only
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
        "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1",
    })
    path.write_text(yaml.safe_dump(config))


def build_on_cluster(repo: Path, cluster) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "usage_features", "build", "--repo", str(repo),
         "--engine", "spark", "--spark-master", cluster.master_url],
        env=cluster.driver_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def tasks_by_worker(event_log: Path) -> Counter:
    """Tasks finished per worker (its web UI address, from its executors' log links), over
    every application's Spark event log."""
    ran = Counter()
    for app in event_log.iterdir():  # a directory of rolled files per application
        executor_worker, tasks = {}, Counter()
        lines = [line for part in sorted(app.glob("events_*")) for line in
                 part.read_text().splitlines()]
        assert lines, f"no Spark events in {app}"
        for line in lines:
            event = json.loads(line)
            if event["Event"] == "SparkListenerExecutorAdded":
                links = event["Executor Info"]["Log Urls"]
                executor_worker[event["Executor ID"]] = urlparse(links["stderr"]).netloc
            elif event["Event"] == "SparkListenerTaskEnd":
                tasks[event["Task Info"]["Executor ID"]] += 1
        assert "driver" not in tasks
        ran.update({executor_worker[e]: n for e, n in tasks.items()})
    return ran


class TestBuildOnASparkCluster:
    def test_two_workers_build_the_tables_duckdb_builds(self, workspace, cluster):
        sim = simulate(SimulationConfig(customers=40, days=75, seed=11))
        events, customers = sim.events.to_pandas(), sim.customers.to_pandas()
        event_log = workspace / "spark-events"
        event_log.mkdir()
        reference = new_repo(workspace / "duckdb", customers)
        on_cluster = new_repo(workspace / "spark", customers)
        cluster_spark_conf(on_cluster.repo, event_log)
        ingest(reference, events)
        ingest(on_cluster, events)

        build_features(reference)
        build_on_cluster(on_cluster.repo, cluster)

        assert_tables_equal(tables(on_cluster), tables(reference))
        assert len(tables(on_cluster)["customer_usage"]) > 1000
        status = cluster.status()
        workers = {urlparse(w["webuiaddress"]).netloc for w in status["workers"]
                   if w["state"] == "ALIVE"}
        assert len(workers) == WORKERS
        assert [a["name"] for a in status["completedapps"]] == ["usage-features"]
        ran = tasks_by_worker(event_log)
        assert set(ran) == workers, (ran, workers)  # every worker ran tasks, no one else did
        assert min(ran.values()) > 0
        if not cluster.isolation.startswith("loopback"):  # separate hosts, driver included
            hosts = {urlparse(f"http://{w}").hostname for w in workers}
            assert len(hosts) == WORKERS and cluster.driver_ip not in hosts
            # and of the driver's directory the executors saw the repo's data/ only
            assert cluster.workers_see(workspace) == [["spark"]] * WORKERS
            assert cluster.workers_see(workspace / "spark") == [["data"]] * WORKERS
            assert cluster.workers_see(on_cluster.data) == [sorted(
                p.name for p in on_cluster.data.iterdir())] * WORKERS


def place(source: Path, target: Path) -> None:
    """Make ``target`` a copy of the repo ``source``, keeping the directory ``target/data``
    itself (the workers see it through a bind mount of that very directory)."""
    for child in [*target.iterdir(), *(target / "data").iterdir()]:
        if child != target / "data":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)


class TestRefreshOnASparkCluster:
    def test_the_days_tables_equal_a_duckdb_refresh(self, workspace, tmp_path_factory, cluster):
        world = make_world(tmp_path_factory.mktemp("world"))
        on_cluster = RepoPaths(workspace / "spark")
        place(world.repo, on_cluster.repo)
        event_log = workspace / "spark-refresh-events"
        event_log.mkdir()
        cluster_spark_conf(on_cluster.repo, event_log)
        world.deliver(FIRST_DAILY)
        now = day_end(FIRST_DAILY).isoformat()
        inbox = world.work / "inbox"

        reference = world.refresh(FIRST_DAILY)
        done = subprocess.run(
            [sys.executable, "-m", "usage_features", "refresh", "--repo", str(on_cluster.repo),
             "--inbox", str(inbox), "--now", now, "--json", "--engine", "spark",
             "--spark-master", cluster.master_url],
            env=cluster.driver_env(), capture_output=True, text=True, timeout=900)

        assert reference.exit_code in (0, 1), reference.output
        assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
        summary, expected = json.loads(done.stdout.splitlines()[-1]), json.loads(
            reference.output.splitlines()[-1])
        assert summary["events_accepted"] == expected["events_accepted"] > 0
        assert summary["feature_rows_changed"] and summary["scored"] == expected["scored"]
        assert_tables_equal(tables(on_cluster), tables(RepoPaths(world.repo)))
        ran = tasks_by_worker(event_log)
        assert len(ran) == WORKERS and min(ran.values()) > 0

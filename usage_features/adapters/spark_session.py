"""The Spark session of the Spark feature build and Feast's Spark offline store.

Configuration, lowest precedence first:

1. the defaults below: ``local[*]``, UTC session time zone, Parquet timestamps as
   ``TIMESTAMP_MICROS`` (what DuckDB and pyarrow write), no UI;
2. ``offline_store.spark_conf`` of the repo's Spark config (``feature_store.spark.yaml``), the
   same settings Feast's Spark offline store starts its session with: put ``spark.master``
   (``spark://host:7077``, ``yarn``, ``k8s://...``) and any other conf there;
3. ``usage-features build --spark-master URL`` (``build_features(spark_master=...)``):
   that ``spark.master``;
4. under ``spark-submit`` the master and conf it was given win (the session already exists).

A process runs one Spark session: asked for another master than the running session's, it
refuses instead of running there.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from usage_features.extras import extra_imports

SPARK_CONFIG = "feature_store.spark.yaml"

DEFAULTS = {
    "spark.master": "local[*]",
    "spark.app.name": "usage-features",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "16",
    "spark.driver.memory": "4g",
    # List the event log's date partitions on the driver: in local mode a listing job costs
    # seconds. On a cluster over object storage, set it back (32): parallel listing pays there.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "4096",
}


def repo_spark_conf(repo: Path) -> dict[str, str]:
    """``offline_store.spark_conf`` of ``repo``'s Spark config; empty without one."""
    path = Path(repo) / SPARK_CONFIG
    if not path.exists():
        return {}
    config = yaml.safe_load(path.read_text()) or {}
    return {k: str(v) for k, v in ((config.get("offline_store") or {}).get("spark_conf")
                                   or {}).items()}


def spark_session(conf: dict[str, str] | None = None):
    """The running Spark session, or a new one with the defaults overlaid by ``conf``."""
    with extra_imports("spark", "the Spark feature build"):
        # deferred: the spark extra
        from pyspark.sql import SparkSession

    settings = {**DEFAULTS, **(conf or {})}
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # launched by spark-submit: keep its master
        settings.pop("spark.master")
    active = SparkSession.getActiveSession()
    if active is not None:
        # one session per process: refuse to run anywhere but the master asked for
        running, wanted = active.sparkContext.master, (conf or {}).get("spark.master")
        if wanted and "spark.master" in settings and running != wanted:
            raise RuntimeError(f"this process already runs a Spark session on {running}; "
                               f"cannot also run on {wanted} (start a new process)")
        return active
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session

"""The SQL engines the feature build runs on: DuckDB (embedded default) and Spark.

The build (:mod:`usage_features.features.build`) is written once as SQL in the shared subset of
both dialects; an engine only knows how to read Parquet files, keep an intermediate table, fetch
a few rows and write Parquet files atomically. Every write goes to a temporary file in the
target's directory and is renamed into place only after the engine has finished reading, so a
failed build leaves the tables as they were.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from usage_features.adapters.duckdb_connection import (
    connect,
    copy_atomically,
    parquet_list,
    run,
    sql_string,
)
from usage_features.features.sql import DUCKDB, SPARK, Dialect

ENGINES = ("duckdb", "spark")


class EngineUnavailable(RuntimeError):
    """The engine's software is not installed here."""


class Engine(ABC):
    """What the build needs from a SQL engine."""

    dialect: Dialect

    @abstractmethod
    def files(self, paths: Sequence[Path]) -> str:
        """A relation (usable after FROM) over the Parquet files ``paths``."""

    @abstractmethod
    def create(self, name: str, query: str) -> None:
        """Compute ``query`` once into the table ``name``."""

    @abstractmethod
    def rows(self, query: str) -> list[tuple]:
        """The (few) rows of ``query``."""

    @abstractmethod
    def write(self, query: str, target: Path, order_by: str) -> None:
        """``query`` as the single Parquet file ``target``, sorted by ``order_by``."""

    @abstractmethod
    def write_split(self, query: str, key: str, directory: Path, order_by: str) -> list[str]:
        """``query`` as one Parquet file ``<directory>/<key value>.parquet`` per value of its
        column ``key`` (left out of the files); returns the values written."""

    def close(self) -> None:
        """Release what the engine holds for this build."""


class DuckDBEngine(Engine):
    """In-process DuckDB over the local Parquet files."""

    dialect = DUCKDB

    def __init__(self) -> None:
        self.con = connect()

    def files(self, paths: Sequence[Path]) -> str:
        return f"read_parquet({parquet_list(paths)}, hive_partitioning = false)"

    def create(self, name: str, query: str) -> None:
        run(self.con, f"CREATE OR REPLACE TABLE {name} AS {query}")

    def rows(self, query: str) -> list[tuple]:
        return self.con.execute(query).fetchall()

    def write(self, query: str, target: Path, order_by: str) -> None:
        copy_atomically(self.con, f"SELECT * FROM ({query}) ORDER BY {order_by}", target)

    def write_split(self, query: str, key: str, directory: Path, order_by: str) -> list[str]:
        self.create("_split", query)
        values = [v for (v,) in self.rows(f"SELECT DISTINCT {key} FROM _split ORDER BY 1")]
        for value in values:
            self.write(f"SELECT * EXCLUDE ({key}) FROM _split WHERE {key} = {sql_string(value)}",
                       directory / f"{value}.parquet", order_by)
        return values

    def close(self) -> None:
        self.con.close()


class SparkEngine(Engine):
    """PySpark: ``local[*]`` by default, any cluster through the Spark configuration.

    Intermediate tables are checkpointed (computed once, held by the executors), so a table
    that reads files the build later replaces is never recomputed from the new files.
    """

    dialect = SPARK

    def __init__(self, session=None, conf: dict[str, str] | None = None) -> None:
        from usage_features.adapters.spark_session import spark_session

        self.spark = session or spark_session(conf)
        # Spark 4.x fails to checkpoint a UNION whose constraints it propagates
        # ("key not found" in UnionBase.rewriteConstraints); the build needs no inferred filters.
        self.spark.conf.set("spark.sql.constraintPropagation.enabled", "false")
        self._views: list[str] = []

    def _view(self, frame, name: str | None = None) -> str:
        name = name or f"_files_{len(self._views)}"
        frame.createOrReplaceTempView(name)
        self._views.append(name)
        return name

    def files(self, paths: Sequence[Path]) -> str:
        return self._view(self.spark.read.parquet(*(hadoop_literal(p) for p in paths)))

    def create(self, name: str, query: str) -> None:
        self._view(self.spark.sql(query).localCheckpoint(eager=True), name)

    def rows(self, query: str) -> list[tuple]:
        return [tuple(row) for row in self.spark.sql(query).collect()]

    def write(self, query: str, target: Path, order_by: str) -> None:
        frame = self.spark.sql(f"SELECT * FROM ({query}) ORDER BY {order_by}").coalesce(1)
        with _staging(target.parent) as staging:
            out = Path(staging) / "out"
            frame.write.parquet(str(out))
            os.replace(_single_part(out), target)

    def write_split(self, query: str, key: str, directory: Path, order_by: str) -> list[str]:
        # One task per key value (a month of feature rows), each writing one sorted file.
        frame = (self.spark.sql(query).repartition(key)
                 .sortWithinPartitions(*(c.strip() for c in order_by.split(","))))
        with _staging(directory) as staging:
            out = Path(staging) / "out"
            frame.write.partitionBy(key).parquet(str(out))
            parts = {p.name.split("=", 1)[1]: _single_part(p) for p in out.glob(f"{key}=*")}
            for value, part in sorted(parts.items()):
                os.replace(part, directory / f"{value}.parquet")
        return sorted(parts)

    def close(self) -> None:
        for name in self._views:
            self.spark.catalog.dropTempView(name)
        self._views.clear()


def open_engine(name: str, conf: dict[str, str] | None = None) -> Engine:
    """The engine called ``name`` (one of :data:`ENGINES`)."""
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        import importlib.util

        if importlib.util.find_spec("pyspark") is None:
            raise EngineUnavailable("the spark engine needs PySpark: pip install "
                                    "'usage-features[spark]' (and a Java 17+ runtime)")
        if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
            raise EngineUnavailable("the spark engine needs a Java 17+ runtime (java on PATH "
                                    "or JAVA_HOME), e.g. apt-get install openjdk-17-jre-headless")
        return SparkEngine(conf=conf)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def hadoop_literal(path) -> str:
    """``path`` as Spark reads exactly that path: Hadoop's glob characters backslash-escaped."""
    return re.sub(r"([\\{}\[\]*?])", r"\\\1", str(path))


def _staging(directory: Path) -> tempfile.TemporaryDirectory:
    """A temporary directory beside ``directory`` (same filesystem: renames are atomic)."""
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=".staging-", dir=directory)


def _single_part(directory: Path) -> Path:
    parts = sorted(directory.glob("part-*.parquet"))
    if len(parts) != 1:
        raise RuntimeError(f"expected one Parquet part file in {directory}, found {len(parts)}")
    return parts[0]

"""The build's SQL engine on PySpark: ``local[*]`` by default, any cluster by configuration."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from usage_features.adapters.files import atomic_path
from usage_features.adapters.spark_session import spark_session
from usage_features.adapters.sql_engine import Engine


class SparkEngine(Engine):
    """PySpark: ``local[*]`` by default, any cluster through the Spark configuration.

    Intermediate tables are checkpointed (computed once, held by the executors), so a table
    that reads files the build later replaces is never recomputed from the new files.
    """

    dialect = "spark"

    def __init__(self, session=None, conf: dict[str, str] | None = None) -> None:
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
            with atomic_path(target) as tmp:
                os.replace(_single_part(out), tmp)

    def stage(self, query: str, key: str, directory: Path, part: int) -> None:
        frame = self.spark.sql(query)
        frame.write.mode("append").partitionBy(key).parquet(str(directory))  # writes: no globs

    def close(self) -> None:
        for name in self._views:
            self.spark.catalog.dropTempView(name)
        self._views.clear()


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

"""The SQL engines the feature build runs on: DuckDB (embedded default) and Spark.

The build (:mod:`usage_features.features.build`) is written once as SQL in the shared subset of
both dialects; an engine only knows how to read Parquet files, keep an intermediate table, fetch
a few rows and write Parquet files atomically. Every write goes to a temporary file in the
target's directory and is renamed into place only after the engine has finished reading, so a
failed build leaves the tables as they were.

An engine names the SQL dialect it speaks (``dialect``); the expressions of each dialect belong
to the SQL the build compiles (:data:`usage_features.features.sql.DIALECTS`), not to the engine.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

ENGINES = ("duckdb", "spark")


class EngineUnavailable(RuntimeError):
    """The engine's software is not installed here."""


class Engine(ABC):
    """What the build needs from a SQL engine."""

    dialect: str  # the name of the SQL dialect the engine speaks: "duckdb" or "spark"
    #: Daily rows the build turns into feature rows per pass (customers split by a hash, so
    #: every pass fits in memory and costs the same per row); None: one pass, the engine
    #: partitions the work itself.
    rows_per_pass: int | None = None
    #: The same for a day's incremental recompute, whose rows are the touched customers'
    #: lookback (None: :attr:`rows_per_pass`).
    lookback_rows_per_pass: int | None = None
    #: Bytes of event-log files aggregated per pass (whole days); None: one pass.
    event_bytes_per_pass: int | None = None

    @abstractmethod
    def files(self, paths: Sequence[Path]) -> str:
        """A relation (usable after FROM) over the Parquet files ``paths``."""

    @abstractmethod
    def create(self, name: str, query: str) -> None:
        """Compute ``query`` once into the table ``name``."""

    def append(self, name: str, query: str) -> None:
        """Add the rows of ``query`` to the table ``name`` (builds in several passes only)."""
        raise NotImplementedError(f"the {self.dialect} engine builds in one pass")

    @abstractmethod
    def rows(self, query: str) -> list[tuple]:
        """The (few) rows of ``query``."""

    @abstractmethod
    def write(self, query: str, target: Path, order_by: str) -> None:
        """``query`` as the single Parquet file ``target``, sorted by ``order_by``."""

    @abstractmethod
    def stage(self, query: str, key: str, directory: Path, part: int) -> None:
        """Add the rows of ``query`` to the staged rows (part 0 starts them anew), unsorted,
        by the value of its column ``key``; here to ``<directory>/<key>=<value>/`` (the
        column left out of the files), in files named after ``part``."""

    def staged(self, key: str, directory: Path) -> dict[str, str]:
        """The rows :meth:`stage` added, by the value of ``key``: a relation over each value's
        rows (without the column ``key``)."""
        return {d.name.split("=", 1)[1]: self.files(sorted(d.glob("*.parquet")))
                for d in sorted(directory.glob(f"{key}=*"))}

    def close(self) -> None:  # noqa: B027 - optional: an engine that holds nothing keeps it
        """Release what the engine holds for this build."""


def open_engine(name: str, conf: dict[str, str] | None = None, spill_to=None,
                memory_limit: int | None = None) -> Engine:
    """The engine called ``name`` (one of :data:`ENGINES`); DuckDB works in ``memory_limit``
    bytes (default its connections' limit) and spills to ``spill_to``."""
    if name == "duckdb":
        # deferred: import cycle (duckdb_engine -> sql_engine.Engine)
        from usage_features.adapters.duckdb_engine import DuckDBEngine

        return DuckDBEngine(spill_to=spill_to, memory_limit=memory_limit)
    if name == "spark":
        if importlib.util.find_spec("pyspark") is None:
            raise EngineUnavailable("the spark engine needs PySpark: pip install "
                                    "'usage-features[spark]' (and a Java 17+ runtime)")
        if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
            raise EngineUnavailable("the spark engine needs a Java 17+ runtime (java on PATH "
                                    "or JAVA_HOME), e.g. apt-get install openjdk-17-jre-headless")
        # deferred: import cycle (spark_engine -> sql_engine.Engine)
        from usage_features.adapters.spark_engine import SparkEngine

        return SparkEngine(conf=conf)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")

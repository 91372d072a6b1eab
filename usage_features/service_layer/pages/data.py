"""What the web pages read, held once per served repo: :class:`PageData`.

Everything here is read from the repo's files and kept in memory until the file changes (its
modification time): the snapshots day by day, the customers table, the worklist's joined
table, the model's validation data. A page view then costs a filter and a few lookups, not a
read of a year of files. Each cache is guarded by a lock: pages are answered in worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from usage_features.adapters.duckdb_connection import connect, run
from usage_features.adapters.snapshot_days import SnapshotDays
from usage_features.features.spec import PLAN, SIGNUP_AT, FeatureSpec, feature_spec
from usage_features.service_layer.bootstrap import Context

#: The customers table's columns the pages show (``plan`` is optional in the table).
CUSTOMER_COLUMNS = ("customer_id", SIGNUP_AT, "churned_at", PLAN)


def file_stamp(path: Path) -> int | None:
    """A file's version for a cache key: its modification time (None: no file)."""
    try:
        return Path(path).stat().st_mtime_ns
    except FileNotFoundError:
        return None


@dataclass
class _Cached:
    key: Any = None
    value: Any = None


@dataclass
class PageData:
    """The pages' view of one repo, through its :class:`Context`; keep one per process."""

    context: Context
    _caches: dict[str, _Cached] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def snapshots(self) -> SnapshotDays:
        return SnapshotDays(self.context.paths.scores)

    @cached_property
    def spec(self) -> FeatureSpec:
        """The served model's feature spec (its own event vocabulary)."""
        return feature_spec(self.context.model.metadata.event_vocabulary)

    @cached_property
    def _connection(self) -> duckdb.DuckDBPyConnection:
        connection = connect()
        # one thread: a page's reads are small, and DuckDB's default (every core) would take
        # the cores the scoring event loop needs for a few milliseconds at every page view
        run(connection, "SET threads = 1")
        return connection

    @contextmanager
    def duckdb(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the pages' one DuckDB connection, for one thread (opening a connection
        per read would cost more than the reads)."""
        with self._lock:
            connection = self._connection
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def cached(self, name: str, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, computed again only when ``key`` changes (one computation at a time
        per name: concurrent first views wait for the one under way)."""
        with self._lock:
            slot = self._caches.setdefault(name, _Cached())
            lock = self._caches.setdefault(f"{name}.lock", _Cached(value=threading.Lock()))
        with lock.value:
            if slot.key != key or slot.value is None:
                slot.value, slot.key = compute(), key
            return slot.value

    def customers(self) -> pd.DataFrame:
        """The customers table indexed by ``customer_id`` (empty when none is loaded)."""
        path = self.context.paths.customers
        return self.cached("customers", file_stamp(path), lambda: _read_customers(path))


def _read_customers(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame({c: [] for c in CUSTOMER_COLUMNS}).set_index("customer_id")
    frame = pd.read_parquet(path)
    for column in CUSTOMER_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame = frame[list(CUSTOMER_COLUMNS)]
    for column in (SIGNUP_AT, "churned_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.set_index("customer_id")


__all__ = ["CUSTOMER_COLUMNS", "PageData", "file_stamp"]

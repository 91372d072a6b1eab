"""UsageRepository over the local Parquet event log, read with DuckDB.

Lookups filter on the ``event_date`` partition (only the days a window spans are opened) and on
``customer_id`` (files are sorted by customer, so row-group statistics skip most of each file).
Writes go through the function it is given: the validated, deduplicating, atomic path of
``usage-features ingest`` (:func:`usage_features.ingestion.ingest.event_repository` wires it;
an adapter does not import ingestion).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import pyarrow as pa

from usage_features.adapters.duckdb_connection import connect, parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.domain.entities import UsageEvent
from usage_features.domain.repository import (
    WritableUsageRepository,
    last_n_days,
    require_aware,
)
from usage_features.schema import EVENT_COLUMNS, EVENT_SCHEMA


class ParquetUsageRepository(WritableUsageRepository):
    """The event log of one feature repo (``DIR/data/events``).

    ``write`` stores a table of events all or nothing and returns how many were new.
    """

    def __init__(self, paths: RepoPaths, write: Callable[[pa.Table], int]) -> None:
        self.paths = paths
        self.write = write
        self.log = EventLog(paths)

    def add(self, events: Iterable[UsageEvent]) -> int:
        rows = [
            (e.event_id, e.customer_id, e.timestamp, e.event_type,
             None if e.feature_adoption_score is None else e.feature_adoption_score.value)
            for e in events
        ]
        table = pa.Table.from_pylist(
            [dict(zip(EVENT_COLUMNS, row)) for row in rows], schema=EVENT_SCHEMA
        )
        return self.write(table)

    def get_events(self, customer_id: str, since: datetime | None = None) -> list[UsageEvent]:
        since = require_aware(since, "since")
        where, params = "customer_id = $customer", {"customer": customer_id}
        if since is not None:
            where += " AND event_date >= CAST($since AS DATE) AND timestamp > $since"
            params["since"] = since
        rows = self._query(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM {{log}} WHERE {where} "
            "ORDER BY timestamp, event_id",
            params,
        )
        return [UsageEvent(*row) for row in rows]

    def count_events_last_n_days(self, customer_id: str, n_days: int,
                                 as_of: datetime | None = None) -> int:
        start, end = last_n_days(n_days, as_of)
        rows = self._query(
            "SELECT count(*) FROM {log} WHERE customer_id = $customer "
            "AND event_date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) "
            "AND timestamp >= $start AND timestamp < $end",
            {"customer": customer_id, "start": start, "end": end},
        )
        return rows[0][0] if rows else 0

    def _query(self, sql: str, params: dict) -> list[tuple]:
        with self.log.snapshot() as files:  # whole batches only
            if not files:
                return []
            log = (f"read_parquet({parquet_list(files)}, hive_partitioning = true, "
                   "hive_types = {'event_date': DATE})")
            with connect() as con:
                return con.execute(sql.format(log=log), params).fetchall()

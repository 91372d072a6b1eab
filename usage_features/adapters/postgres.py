"""UsageRepository on PostgreSQL (psycopg 3).

Table ``usage_events`` (name configurable): ``event_id UUID PRIMARY KEY``, ``customer_id``,
``timestamp TIMESTAMPTZ``, ``event_type``, ``feature_adoption_score`` (checked within [0, 1]),
with an index on ``(customer_id, timestamp)`` for the lookups the port makes. The schema is
created if absent when the repository is opened. ``add`` copies the batch into a temporary
table and inserts what is new in one transaction; a conflicting event aborts the whole call.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import psycopg
from psycopg import sql

from usage_features.domain.entities import UsageEvent
from usage_features.domain.repository import (
    ConflictingEventError,
    UsageRepository,
    require_aware,
)

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_COLUMNS = ("event_id", "customer_id", "timestamp", "event_type", "feature_adoption_score")


class PostgresUsageRepository(UsageRepository):
    """Usage events in a PostgreSQL table; the connection is the caller's (cheap to construct)."""

    def __init__(self, connection: psycopg.Connection, table: str = "usage_events") -> None:
        self.connection = connection
        self.table = sql.Identifier(table)
        self.index = sql.Identifier(f"{table}_customer_time")

    @classmethod
    def connect(cls, dsn: str = DEFAULT_DSN, table: str = "usage_events"
                ) -> PostgresUsageRepository:
        """Open a connection and make sure the schema exists."""
        repository = cls(psycopg.connect(dsn), table)
        repository.create_schema()
        return repository

    def create_schema(self) -> None:
        """Create the table and its index if absent (idempotent)."""
        with self.connection.transaction():
            self.connection.execute(sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                    event_id UUID PRIMARY KEY,
                    customer_id TEXT NOT NULL CHECK (customer_id <> ''),
                    timestamp TIMESTAMPTZ NOT NULL,
                    event_type TEXT NOT NULL,
                    feature_adoption_score DOUBLE PRECISION NOT NULL
                        CHECK (feature_adoption_score BETWEEN 0 AND 1))""").format(self.table))
            self.connection.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} (customer_id, timestamp)"
            ).format(self.index, self.table))

    def add(self, events: Iterable[UsageEvent]) -> int:
        rows = [(e.event_id, e.customer_id, e.timestamp, e.event_type.value,
                 e.feature_adoption_score.value) for e in events]
        columns = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
        with self.connection.transaction(), self.connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE incoming (event_id UUID, customer_id TEXT, "
                           "timestamp TIMESTAMPTZ, event_type TEXT, "
                           "feature_adoption_score DOUBLE PRECISION) ON COMMIT DROP")
            with cursor.copy(sql.SQL("COPY incoming ({}) FROM STDIN").format(columns)) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(sql.SQL(
                """SELECT i.event_id FROM incoming i JOIN {} t USING (event_id)
                   WHERE (i.customer_id, i.timestamp, i.event_type, i.feature_adoption_score)
                      IS DISTINCT FROM
                         (t.customer_id, t.timestamp, t.event_type, t.feature_adoption_score)
                   UNION
                   SELECT event_id FROM incoming GROUP BY event_id
                   HAVING count(DISTINCT (customer_id, timestamp, event_type,
                                          feature_adoption_score)) > 1
                   LIMIT 3""").format(self.table))
            conflicts = [str(row[0]) for row in cursor.fetchall()]
            if conflicts:
                raise ConflictingEventError(
                    f"event(s) already stored with different values: {', '.join(conflicts)}")
            cursor.execute(sql.SQL(
                "INSERT INTO {} ({}) SELECT DISTINCT ON (event_id) {} FROM incoming "
                "ON CONFLICT (event_id) DO NOTHING").format(self.table, columns, columns))
            return cursor.rowcount

    def get_events(self, customer_id: str, since: datetime | None = None) -> list[UsageEvent]:
        since = require_aware(since, "since")
        query = sql.SQL("SELECT event_id::text, customer_id, timestamp, event_type, "
                        "feature_adoption_score FROM {} WHERE customer_id = %s").format(
                            self.table)
        params: list = [customer_id]
        if since is not None:
            query += sql.SQL(" AND timestamp > %s")
            params.append(since)
        query += sql.SQL(" ORDER BY timestamp, event_id")
        with self.connection.cursor() as cursor:
            rows = cursor.execute(query, params).fetchall()
        self.connection.commit()
        return [UsageEvent(*row) for row in rows]

    def _count_between(self, customer_id: str, start: datetime, end: datetime) -> int:
        query = sql.SQL("SELECT count(*) FROM {} WHERE customer_id = %s "
                        "AND timestamp >= %s AND timestamp < %s").format(self.table)
        with self.connection.cursor() as cursor:
            (count,) = cursor.execute(query, (customer_id, start, end)).fetchone()
        self.connection.commit()
        return count

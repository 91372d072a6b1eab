"""UsageRepository on PostgreSQL (psycopg 3).

Table ``usage_events`` (name configurable, for test isolation): ``event_id TEXT PRIMARY KEY``,
``customer_id``, ``timestamp TIMESTAMPTZ``, ``event_type``, ``feature_adoption_score`` (checked
within [0, 1]), with an index on ``(customer_id, timestamp)`` for every lookup the port makes.

Schema: :meth:`PostgresUsageRepository.connect` creates it if absent. The constructor never
touches the server, so a repository built directly calls ``create_schema()`` itself (or relies
on a migration having done so).

Transactions: each call runs in ``connection.transaction()``, so it commits on its own, or
becomes a savepoint of a transaction the caller already has open.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Self

from usage_features.domain.entities import UsageEvent
from usage_features.domain.repository import (
    ConflictingEventError,
    WritableUsageRepository,
    last_n_days,
    require_aware,
)
from usage_features.extras import extra_imports

with extra_imports("postgres", "PostgreSQL storage"):
    import psycopg
    from psycopg import sql

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_COLUMNS = sql.SQL(", ").join(
    map(sql.Identifier, ("event_id", "customer_id", "timestamp", "event_type",
                         "feature_adoption_score")))
#: PostgreSQL truncates identifiers at 63 bytes; the index name adds this suffix to the table's.
_INDEX_SUFFIX = "_customer_time"
_MAX_TABLE_BYTES = 63 - len(_INDEX_SUFFIX)


class PostgresUsageRepository(WritableUsageRepository):
    """Usage events in a PostgreSQL table.

    Parameters
    ----------
    connection : psycopg.Connection or str
        An open connection (the caller's: never closed here), or a conninfo string, opened
        (in autocommit mode) on first use and closed by :meth:`close`.
    table : str
        Unquoted table name, at most 49 bytes; quoted with ``sql.Identifier``.
    """

    def __init__(self, connection: psycopg.Connection | str,
                 table: str = "usage_events") -> None:
        if not isinstance(table, str) or not table or "\x00" in table:
            raise ValueError(f"table must be a non-empty name, got {table!r}")
        if len(table.encode()) > _MAX_TABLE_BYTES:
            raise ValueError(f"table name must be at most {_MAX_TABLE_BYTES} bytes, got {table!r}")
        self._owns_connection = isinstance(connection, str)
        self._conninfo = connection if isinstance(connection, str) else ""
        self._connection = None if isinstance(connection, str) else connection
        self.table = sql.Identifier(table)
        self.index = sql.Identifier(table + _INDEX_SUFFIX)
        # Named after the table, so it can never shadow it (temporary tables are found first).
        self._staging = sql.Identifier("pg_temp", table + "_incoming")

    @classmethod
    def connect(cls, dsn: str = DEFAULT_DSN, table: str = "usage_events"
                ) -> PostgresUsageRepository:
        """Open a connection now and create the schema if absent."""
        repository = cls(dsn, table)
        repository.create_schema()
        return repository

    @property
    def connection(self) -> psycopg.Connection:
        if self._connection is None:
            self._connection = psycopg.connect(self._conninfo, autocommit=True)
        return self._connection

    def close(self) -> None:
        """Close the connection if this repository opened it."""
        if self._owns_connection and self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def create_schema(self) -> None:
        """Create the table and its index if absent (idempotent)."""
        with self.connection.transaction():
            self.connection.execute(sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                    event_id TEXT PRIMARY KEY,
                    customer_id TEXT NOT NULL,
                    timestamp TIMESTAMPTZ NOT NULL,
                    event_type TEXT NOT NULL,
                    feature_adoption_score DOUBLE PRECISION
                        CHECK (feature_adoption_score BETWEEN 0 AND 1))""").format(self.table))
            self.connection.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} (customer_id, timestamp)"
            ).format(self.index, self.table))

    def add(self, events: Iterable[UsageEvent]) -> int:
        """COPY the batch into a temporary table, insert the new ids, then look for conflicts.

        Conflicts are looked for after the insert: it waits for concurrent writers of the same
        ids, whose rows the next statement then sees. Every id of the batch is then stored, so
        one join finds both stored ids with other content and in-batch duplicates that differ.
        """
        rows = [(e.event_id, e.customer_id, e.timestamp, e.event_type,
                 None if e.feature_adoption_score is None else e.feature_adoption_score.value)
                for e in events]
        if not rows:
            return 0
        with self.connection.transaction(), self.connection.cursor() as cursor:
            cursor.execute(sql.SQL(
                "CREATE TEMP TABLE {} (event_id TEXT, customer_id TEXT, timestamp TIMESTAMPTZ, "
                "event_type TEXT, feature_adoption_score DOUBLE PRECISION) ON COMMIT DROP"
            ).format(self._staging))
            with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    self._staging, _COLUMNS)) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(sql.SQL(
                "INSERT INTO {} ({}) SELECT DISTINCT ON (event_id) {} FROM {} "
                "ON CONFLICT (event_id) DO NOTHING"
            ).format(self.table, _COLUMNS, _COLUMNS, self._staging))
            added = cursor.rowcount
            cursor.execute(sql.SQL(
                """SELECT DISTINCT i.event_id::text FROM {} i JOIN {} t USING (event_id)
                   WHERE (i.customer_id, i.timestamp, i.event_type, i.feature_adoption_score)
                         IS DISTINCT FROM
                         (t.customer_id, t.timestamp, t.event_type, t.feature_adoption_score)
                   LIMIT 5""").format(self._staging, self.table))
            conflicts = [row[0] for row in cursor.fetchall()]
            if conflicts:  # leaving the block with an exception rolls the whole call back
                raise ConflictingEventError(
                    f"event(s) stored or sent with different content: {', '.join(conflicts)}")
            # Dropped now, not only at commit: inside the caller's transaction, a later call
            # would otherwise find it still there.
            cursor.execute(sql.SQL("DROP TABLE {}").format(self._staging))
        return added

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
        with self._reading() as cursor:
            rows = cursor.execute(query, params).fetchall()
        return [UsageEvent(*row) for row in rows]  # the entity converts timestamps to UTC

    def count_events_last_n_days(self, customer_id: str, n_days: int,
                                 as_of: datetime | None = None) -> int:
        start, end = last_n_days(n_days, as_of)
        query = sql.SQL("SELECT count(*) FROM {} WHERE customer_id = %s "
                        "AND timestamp >= %s AND timestamp < %s").format(self.table)
        with self._reading() as cursor:
            row = cursor.execute(query, (customer_id, start, end)).fetchone()
        assert row is not None  # count(*) always returns a row
        return int(row[0])

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Cursor]:
        """A cursor for a read that leaves no transaction open (nor commits the caller's)."""
        connection = self.connection
        scope = nullcontext() if connection.autocommit else connection.transaction()
        with scope, connection.cursor() as cursor:
            yield cursor

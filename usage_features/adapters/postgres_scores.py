"""Score snapshots into PostgreSQL: table ``churn_scores``, one row per customer and day.

``(customer_id, score_date)`` is the primary key: writing a day again replaces that day's rows
(an upsert; customers no longer scored that day are deleted), and earlier days are kept, so the
table is the score history a team can query or join to its CRM.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from usage_features.extras import extra_imports

with extra_imports("postgres", "PostgreSQL storage"):
    import psycopg
    from psycopg import sql

DEFAULT_TABLE = "churn_scores"
_COLUMNS = ("customer_id", "score_date", "churn_probability", "risk_band", "reasons",
            "model_version", "as_of")


class PostgresScoreSink:
    """Upserts a day's scores into ``table`` (created if absent) over ``conninfo``."""

    def __init__(self, conninfo: str, table: str = DEFAULT_TABLE) -> None:
        if not table or "\x00" in table:
            raise ValueError(f"table must be a non-empty name, got {table!r}")
        self.conninfo = conninfo
        self.table = sql.Identifier(table)

    def create_schema(self, connection: psycopg.Connection) -> None:
        connection.execute(sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (
                customer_id TEXT NOT NULL,
                score_date DATE NOT NULL,
                churn_probability DOUBLE PRECISION NOT NULL
                    CHECK (churn_probability BETWEEN 0 AND 1),
                risk_band TEXT NOT NULL,
                reasons TEXT[] NOT NULL,
                model_version TEXT NOT NULL,
                as_of TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (customer_id, score_date))""").format(self.table))

    def write(self, frame: pd.DataFrame, day: date) -> int:
        """Make ``day``'s rows equal ``frame`` (the snapshot's columns), in one transaction."""
        rows = [(r.customer_id, day, float(r.churn_probability), r.risk_band, list(r.reasons),
                 r.model_version, r.as_of.to_pydatetime())
                for r in frame.itertuples(index=False)]
        columns = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
        staging = sql.Identifier("churn_scores_incoming")
        with psycopg.connect(self.conninfo) as connection, connection.transaction():
            self.create_schema(connection)
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL(
                    "CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(staging, self.table))
                with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                        staging, columns)) as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(sql.SQL(
                    "DELETE FROM {} t WHERE score_date = %s AND NOT EXISTS "
                    "(SELECT 1 FROM {} i WHERE i.customer_id = t.customer_id)").format(
                        self.table, staging), (day,))
                updates = sql.SQL(", ").join(
                    sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                    for c in _COLUMNS[2:])
                cursor.execute(sql.SQL(
                    "INSERT INTO {} ({}) SELECT {} FROM {} "
                    "ON CONFLICT (customer_id, score_date) DO UPDATE SET {}").format(
                        self.table, columns, columns, staging, updates))
        return len(rows)

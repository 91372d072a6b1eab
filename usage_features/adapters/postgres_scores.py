"""Scores into PostgreSQL: table ``churn_scores``, one row per customer and day.

``(customer_id, score_date)`` is the primary key: writing a day again replaces that day's rows
(an upsert; customers no longer scored that day are deleted), and earlier days are kept, so the
table is the score history a team can query or join to its CRM. Its other columns are the
:class:`Score` fields; a table created by an earlier version gains the new ones on the next
write (``ADD COLUMN IF NOT EXISTS``; a probability column per horizon, ``churn_probability_60d``
and ``churn_probability_90d`` by default, and ``expected_days_to_churn``), its older rows with
those columns empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from usage_features.extras import extra_imports

with extra_imports("postgres", "PostgreSQL storage"):
    import psycopg
    from psycopg import sql

from usage_features.domain.scores import (
    DEFAULT_HORIZONS,
    Score,
    ScoreSink,
    score_columns,
    scores_horizons,
)

DEFAULT_TABLE = "churn_scores"
#: Each Score field's column type (the key columns come first, see ``create_schema``).
COLUMN_TYPES = {
    "customer_id": "TEXT NOT NULL",
    "as_of": "TIMESTAMPTZ NOT NULL",
    "status": "TEXT",
    "model_version": "TEXT NOT NULL",
    "churn_probability": "DOUBLE PRECISION CHECK (churn_probability BETWEEN 0 AND 1)",
    "risk_band": "TEXT",
    "reasons": "TEXT[] NOT NULL",
    "features_from": "TEXT",
    "latest_event_at": "TIMESTAMPTZ",
    "fresh": "BOOLEAN",
    "churned_at": "TIMESTAMPTZ",
    "error": "TEXT",
    "expected_days_to_churn": "DOUBLE PRECISION CHECK (expected_days_to_churn >= 0)",
}


def column_type(column: str) -> str:
    """A column's type: :data:`COLUMN_TYPES`, or a probability for a horizon's column."""
    if column in COLUMN_TYPES:
        return COLUMN_TYPES[column]
    return f"DOUBLE PRECISION CHECK ({column} BETWEEN 0 AND 1)"


def table_columns(horizons=()) -> tuple[str, ...]:
    """The table's columns for scores with ``horizons``, key first."""
    return ("customer_id", "score_date", *score_columns(horizons)[1:])


def text_array(values: Sequence[str]) -> str:
    """``values`` as PostgreSQL's array literal, the input of a ``TEXT[]`` column: each
    element double-quoted, its quotes and backslashes escaped (so ``NULL``, commas and braces
    are text)."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


class PostgresScoreSink(ScoreSink):
    """Upserts a day's scores into ``table`` (created or migrated if needed) over
    ``conninfo``."""

    def __init__(self, conninfo: str, table: str = DEFAULT_TABLE) -> None:
        if not table or "\x00" in table:
            raise ValueError(f"table must be a non-empty name, got {table!r}")
        self.conninfo = conninfo
        self.table_name = table
        self.table = sql.Identifier(table)

    @property
    def name(self) -> str:
        return f"PostgreSQL table {self.table_name}"

    def create_schema(self, connection: psycopg.Connection, horizons=DEFAULT_HORIZONS) -> None:
        """The table as this version writes it: created, or the columns added since (one
        probability column per horizon of ``horizons``)."""
        connection.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (customer_id TEXT NOT NULL, score_date DATE NOT NULL, "
            "PRIMARY KEY (customer_id, score_date))").format(self.table))
        for column in score_columns(horizons)[1:]:
            connection.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                self.table, sql.Identifier(column), sql.SQL(column_type(column))))
        # A table of the first version: only active customers, so these were required.
        for column in ("churn_probability", "risk_band"):
            connection.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                self.table, sql.Identifier(column)))

    def write(self, scores: Sequence[Score], day: date) -> int:
        """Make ``day``'s rows equal ``scores``, in one transaction."""
        horizons = sorted({*DEFAULT_HORIZONS, *scores_horizons(scores)})
        names = table_columns(horizons)
        rows, arrays = [], {}
        for s in scores:
            values = s.row()
            # reasons repeat: each distinct list formatted once, as the text COPY reads it
            # (psycopg's list dumper is Python, per value: 0.8 s for 74,000 scores)
            if (array := arrays.get(s.reasons)) is None:
                array = arrays[s.reasons] = text_array(s.reasons)
            values["reasons"] = array
            rows.append((s.customer_id, day, *(values.get(c) for c in names[2:])))
        columns = sql.SQL(", ").join(map(sql.Identifier, names))
        staging = sql.Identifier("churn_scores_incoming")
        with psycopg.connect(self.conninfo) as connection, connection.transaction():
            self.create_schema(connection, horizons)
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
                    for c in names[2:])
                cursor.execute(sql.SQL(
                    "INSERT INTO {} ({}) SELECT {} FROM {} "
                    "ON CONFLICT (customer_id, score_date) DO UPDATE SET {}").format(
                        self.table, columns, columns, staging, updates))
        return len(rows)

"""Score snapshots on disk and in PostgreSQL: a day written twice is written once, history kept."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from usage_features.adapters.postgres_scores import PostgresScoreSink
from usage_features.serving.scorer import Score
from usage_features.serving.snapshots import (
    read_snapshot,
    read_snapshots,
    scores_frame,
    snapshot_days,
    write_snapshot,
)

AS_OF = datetime(2025, 6, 2, tzinfo=UTC)


def make_scores(probabilities: dict[str, float | None]) -> list[Score]:
    return [Score(customer, "v1", p, None if p is None else ("high" if p >= 0.5 else "low"),
                  [] if p is None else [f"reason for {customer}"],
                  error=None if p is not None else "unknown customer")
            for customer, p in probabilities.items()]


class TestSnapshotFiles:
    def test_a_snapshot_keeps_scored_customers_only_with_their_reasons(self, tmp_path):
        frame = scores_frame(make_scores({"00042": 0.7, "b": 0.1, "ghost": None}), AS_OF)
        write_snapshot(tmp_path, frame, AS_OF.date())
        read = read_snapshot(tmp_path, AS_OF.date())
        assert read.customer_id.tolist() == ["00042", "b"]
        assert read.churn_probability.tolist() == [0.7, 0.1]
        assert [list(r) for r in read.reasons] == [["reason for 00042"], ["reason for b"]]
        assert read.as_of.iloc[0] == pd.Timestamp(AS_OF)

    def test_writing_a_day_twice_replaces_it_and_keeps_other_days(self, tmp_path):
        first = scores_frame(make_scores({"a": 0.2}), AS_OF)
        write_snapshot(tmp_path, first, date(2025, 6, 1))
        write_snapshot(tmp_path, first, AS_OF.date())
        write_snapshot(tmp_path, scores_frame(make_scores({"a": 0.3}), AS_OF), AS_OF.date())
        assert snapshot_days(tmp_path) == [date(2025, 6, 1), AS_OF.date()]
        history = read_snapshots(tmp_path)
        assert history.groupby("date").churn_probability.sum().tolist() == [0.2, 0.3]


@pytest.fixture
def sink(postgres_dsn):
    table = f"churn_scores_test_{uuid.uuid4().hex[:12]}"
    yield PostgresScoreSink(postgres_dsn, table)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def stored(sink: PostgresScoreSink) -> list[tuple]:
    with psycopg.connect(sink.conninfo) as connection:
        return connection.execute(sql.SQL(
            "SELECT customer_id, score_date, churn_probability, risk_band, reasons, "
            "model_version, as_of FROM {} ORDER BY score_date, customer_id").format(
                sink.table)).fetchall()


@pytest.mark.postgres
class TestPostgresScoreSink:
    def test_rows_arrive_as_written(self, sink):
        frame = scores_frame(make_scores({"00042": 0.7, "b": 0.1}), AS_OF)
        assert sink.write(frame, AS_OF.date()) == 2
        assert stored(sink) == [
            ("00042", AS_OF.date(), 0.7, "high", ["reason for 00042"], "v1", AS_OF),
            ("b", AS_OF.date(), 0.1, "low", ["reason for b"], "v1", AS_OF),
        ]

    def test_writing_a_day_twice_equals_writing_it_once(self, sink):
        frame = scores_frame(make_scores({"a": 0.7, "b": 0.1}), AS_OF)
        sink.write(frame, AS_OF.date())
        once = stored(sink)
        sink.write(frame, AS_OF.date())
        assert stored(sink) == once

    def test_a_rewritten_day_replaces_its_rows_and_earlier_days_are_kept(self, sink):
        sink.write(scores_frame(make_scores({"a": 0.7, "b": 0.1}), AS_OF), date(2025, 6, 1))
        sink.write(scores_frame(make_scores({"a": 0.7, "b": 0.1}), AS_OF), AS_OF.date())
        sink.write(scores_frame(make_scores({"a": 0.4}), AS_OF), AS_OF.date())
        rows = [(r[0], r[1], r[2]) for r in stored(sink)]
        assert rows == [("a", date(2025, 6, 1), 0.7), ("b", date(2025, 6, 1), 0.1),
                        ("a", AS_OF.date(), 0.4)]

"""Score sinks on disk and in PostgreSQL: a day written twice is written once, history kept,
every Score field stored as it was, and a table of the first version migrated."""

from __future__ import annotations

import uuid
from dataclasses import astuple, replace
from datetime import UTC, date, datetime

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from usage_features.adapters.postgres_scores import COLUMN_TYPES, PostgresScoreSink
from usage_features.adapters.score_snapshots import (
    SCHEMA,
    ParquetSnapshots,
    read_snapshot,
    read_snapshots,
    snapshot_days,
    snapshot_path,
)
from usage_features.domain.scores import HISTORICAL, SCORE_FIELDS, Score, score_columns

AS_OF = datetime(2025, 6, 2, tzinfo=UTC)
LATEST = datetime(2025, 6, 1, 23, 59, tzinfo=UTC)


def make_scores(probabilities: dict[str, float | None], horizons=(60, 90)) -> list[Score]:
    return [Score(customer, AS_OF, "active" if p is not None else "churned", "v1", p,
                  None if p is None else ("high" if p >= 0.5 else "low"),
                  () if p is None else (f"reason for {customer}",),
                  latest_event_at=LATEST,
                  churned_at=None if p is not None else datetime(2025, 5, 1, tzinfo=UTC),
                  horizon_probabilities=tuple(
                      (h, None if p is None else min(1.0, p + h / 1000)) for h in horizons),
                  expected_days_to_churn=None if p is None or p < 0.5 else 45.5)
            for customer, p in probabilities.items()]


def from_row(row: dict) -> Score:
    """A snapshot's row (pandas' missing values) back as the Score it was written from."""
    plain = {k: (None if v is pd.NaT or (isinstance(v, float) and v != v)
                 else tuple(v) if k == "reasons"
                 else v.to_pydatetime() if isinstance(v, pd.Timestamp) else v)
             for k, v in row.items()}
    horizons = tuple((int(k.removeprefix("churn_probability_").removesuffix("d")),
                      plain.pop(k)) for k in list(plain) if k.endswith("d")
                     and k.startswith("churn_probability_"))
    return Score(**plain, horizon_probabilities=horizons)


def test_the_snapshot_and_the_table_have_a_column_per_score_field():
    assert tuple(SCHEMA.names) == SCORE_FIELDS
    assert set(COLUMN_TYPES) == set(SCORE_FIELDS)


class TestSnapshotFiles:
    def test_every_field_of_every_score_is_read_back(self, tmp_path):
        scores = make_scores({"00042": 0.7, "b": 0.1, "gone": None})
        scores[1] = Score(**{**scores[1].__dict__, "features_from": HISTORICAL, "fresh": False})
        assert ParquetSnapshots(tmp_path).write(scores, AS_OF.date()) == 3
        read = read_snapshot(tmp_path, AS_OF.date())
        back = [from_row(row) for row in read.to_dict(orient="records")]
        assert [astuple(s) for s in back] == [astuple(s) for s in scores]
        assert read.churn_probability_90d.iloc[0] == pytest.approx(0.79)

    def test_a_configured_horizon_gets_its_own_column(self, tmp_path):
        scores = make_scores({"a": 0.3, "gone": None}, horizons=(45, 180))
        ParquetSnapshots(tmp_path).write(scores, AS_OF.date())
        read = read_snapshot(tmp_path, AS_OF.date())
        assert list(read.columns) == list(score_columns((45, 60, 90, 180)))
        assert read.churn_probability_180d.iloc[0] == pytest.approx(0.48)
        assert read.churn_probability_60d.isna().all()  # the default's, read empty

    def test_writing_a_day_twice_replaces_it_and_keeps_other_days(self, tmp_path):
        sink = ParquetSnapshots(tmp_path)
        sink.write(make_scores({"a": 0.2}), date(2025, 6, 1))
        sink.write(make_scores({"a": 0.2}), AS_OF.date())
        sink.write(make_scores({"a": 0.3}), AS_OF.date())
        assert snapshot_days(tmp_path) == [date(2025, 6, 1), AS_OF.date()]
        history = read_snapshots(tmp_path)
        assert history.groupby("date").churn_probability.sum().tolist() == [0.2, 0.3]

    def test_a_snapshot_of_the_first_version_is_read_with_the_new_columns_empty(self, tmp_path):
        old = pd.DataFrame({"customer_id": ["a"], "churn_probability": [0.4],
                            "risk_band": ["medium"], "reasons": [["r"]],
                            "model_version": ["v0"], "as_of": [pd.Timestamp(AS_OF)]})
        path = snapshot_path(tmp_path, AS_OF.date())
        path.parent.mkdir(parents=True)
        old.to_parquet(path)
        read = read_snapshot(tmp_path, AS_OF.date())
        assert list(read.columns) == list(score_columns((60, 90)))
        assert read.churn_probability.tolist() == [0.4] and read.status.isna().all()
        for column in ("churn_probability_60d", "churn_probability_90d",
                       "expected_days_to_churn"):
            assert read[column].isna().all()

    def test_a_snapshot_written_before_horizons_is_read_with_them_empty(self, tmp_path):
        before = make_scores({"a": 0.4}, horizons=())
        ParquetSnapshots(tmp_path).write(before, AS_OF.date())
        written = pd.read_parquet(snapshot_path(tmp_path, AS_OF.date()))
        assert "churn_probability_60d" not in written.columns
        read = read_snapshot(tmp_path, AS_OF.date())
        assert read.churn_probability_60d.isna().all() and read.churn_probability.tolist() == [
            0.4]


@pytest.fixture
def sink(postgres_dsn):
    table = f"churn_scores_test_{uuid.uuid4().hex[:12]}"
    yield PostgresScoreSink(postgres_dsn, table)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def stored(sink: PostgresScoreSink, columns=("customer_id", "score_date", "churn_probability",
                                             "risk_band", "reasons", "model_version", "as_of")
           ) -> list[tuple]:
    with psycopg.connect(sink.conninfo) as connection:
        return connection.execute(sql.SQL("SELECT {} FROM {} ORDER BY score_date, customer_id")
                                  .format(sql.SQL(", ").join(map(sql.Identifier, columns)),
                                          sink.table)).fetchall()


@pytest.mark.postgres
class TestPostgresScoreSink:
    def test_rows_arrive_as_written(self, sink):
        assert sink.write(make_scores({"00042": 0.7, "b": 0.1}), AS_OF.date()) == 2
        assert stored(sink) == [
            ("00042", AS_OF.date(), 0.7, "high", ["reason for 00042"], "v1", AS_OF),
            ("b", AS_OF.date(), 0.1, "low", ["reason for b"], "v1", AS_OF),
        ]

    def test_every_score_field_is_stored(self, sink):
        scores = make_scores({"a": 0.7, "gone": None})
        sink.write(scores, AS_OF.date())
        columns = score_columns((60, 90))
        rows = stored(sink, columns)
        assert [tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in rows] \
            == [tuple(tuple(v) if isinstance(v, list) else v for v in s.row().values())
                for s in scores]
        assert rows[0][columns.index("churn_probability_90d")] == pytest.approx(0.79)
        assert rows[0][columns.index("expected_days_to_churn")] == 45.5

    def test_reasons_of_any_text_are_stored_as_given(self, sink):
        odd = [(), ("",), ("NULL",), ('say "hi"', "back\\slash", "a,b", "{braces}"),
               ("tab\tnew\nline", "ünïcödé ✓", " padded ", "\\N"), ('"', "\\", "NULL")]
        scores = [replace(score, customer_id=f"c{i}", reasons=reasons) for i, (score, reasons)
                  in enumerate(zip(make_scores({f"c{i}": 0.5 for i in range(len(odd))}), odd))]
        sink.write([*scores, replace(scores[3], customer_id="same reasons as c3")],
                   AS_OF.date())
        got = {row[0]: tuple(row[4]) for row in stored(sink)}
        assert got == {**{f"c{i}": reasons for i, reasons in enumerate(odd)},
                       "same reasons as c3": odd[3]}

    def test_writing_a_day_twice_equals_writing_it_once(self, sink):
        scores = make_scores({"a": 0.7, "b": 0.1})
        sink.write(scores, AS_OF.date())
        once = stored(sink)
        sink.write(scores, AS_OF.date())
        assert stored(sink) == once

    def test_a_rewritten_day_replaces_its_rows_and_earlier_days_are_kept(self, sink):
        sink.write(make_scores({"a": 0.7, "b": 0.1}), date(2025, 6, 1))
        sink.write(make_scores({"a": 0.7, "b": 0.1}), AS_OF.date())
        sink.write(make_scores({"a": 0.4}), AS_OF.date())
        rows = [(r[0], r[1], r[2]) for r in stored(sink)]
        assert rows == [("a", date(2025, 6, 1), 0.7), ("b", date(2025, 6, 1), 0.1),
                        ("a", AS_OF.date(), 0.4)]

    def test_a_table_of_the_first_version_is_migrated_and_keeps_its_rows(self, sink):
        with psycopg.connect(sink.conninfo) as connection:  # the first version's table
            connection.execute(sql.SQL(
                """CREATE TABLE {} (customer_id TEXT NOT NULL, score_date DATE NOT NULL,
                churn_probability DOUBLE PRECISION NOT NULL
                    CHECK (churn_probability BETWEEN 0 AND 1),
                risk_band TEXT NOT NULL, reasons TEXT[] NOT NULL, model_version TEXT NOT NULL,
                as_of TIMESTAMPTZ NOT NULL, PRIMARY KEY (customer_id, score_date))""").format(
                    sink.table))
            connection.execute(sql.SQL("INSERT INTO {} VALUES ('old', '2025-05-01', 0.5, "
                                       "'high', '{{}}', 'v0', '2025-05-01T00:00Z')").format(
                                           sink.table))
        sink.write(make_scores({"a": 0.7, "gone": None}), AS_OF.date())
        rows = stored(sink, ("customer_id", "churn_probability", "status"))
        assert rows == [("old", 0.5, None), ("a", 0.7, "active"), ("gone", None, "churned")]
        rows = stored(sink, ("customer_id", "churn_probability_60d", "churn_probability_90d",
                             "expected_days_to_churn"))
        assert rows == [("old", None, None, None), ("a", 0.76, pytest.approx(0.79), 45.5),
                        ("gone", None, None, None)]

    def test_a_table_written_before_horizons_gains_their_columns(self, sink):
        sink.write(make_scores({"a": 0.2}, horizons=()), date(2025, 6, 1))  # no horizons yet
        sink.write(make_scores({"a": 0.3}, horizons=(60, 90, 180)), AS_OF.date())
        rows = stored(sink, ("customer_id", "score_date", "churn_probability_60d",
                             "churn_probability_180d"))
        assert rows == [("a", date(2025, 6, 1), None, None),
                        ("a", AS_OF.date(), pytest.approx(0.36), pytest.approx(0.48))]

    def test_a_probability_outside_zero_to_one_is_refused(self, sink):
        bad = make_scores({"a": 0.3})[0]
        bad = Score(**{**bad.__dict__, "horizon_probabilities": ((60, 1.5), (90, 1.5))})
        with pytest.raises(psycopg.errors.CheckViolation):
            sink.write([bad], AS_OF.date())

"""The score use case's policy, with fakes: a time the online store holds is answered online,
any other from the historical path, and the answer says which and why; without a time, now if
the online store holds now's features, else the online store's own time, saying so."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd

from tests.fakes import DictScorer
from usage_features.domain.scores import HISTORICAL, ONLINE
from usage_features.service_layer.score import score, score_active

DAY = date(2026, 3, 2)
ON_THE_DAY = datetime(2026, 3, 2, 15, tzinfo=UTC)


class TestScore:
    def test_a_time_on_the_online_stores_day_is_answered_online(self):
        scorer = DictScorer({"a": 0.3}, DAY)
        answer = score(scorer, ["a"], ON_THE_DAY)
        assert answer.features_from == ONLINE and answer.note is None
        assert [s.features_from for s in answer.scores] == [ONLINE]
        assert scorer.calls == [ONLINE]

    def test_no_time_means_now_from_the_online_store(self):
        scorer = DictScorer({"a": 0.3}, DAY)
        answer = score(scorer, ["a"])
        assert answer.features_from == ONLINE and answer.note is None
        assert [(s.as_of, s.fresh) for s in answer.scores] == [(scorer.now, True)]

    def test_no_time_on_a_store_of_another_day_is_answered_as_of_the_store_s_own_time(self):
        """Never the recency of now over the windows of a day 507 days earlier."""
        scorer = DictScorer({"a": 0.3}, DAY, now=ON_THE_DAY + timedelta(days=507))
        answer = score(scorer, ["a", "nobody"])
        assert answer.features_from == ONLINE and scorer.calls == [ONLINE]
        assert [(s.as_of, s.features_from, s.fresh) for s in answer.scores] == [
            (scorer.held, ONLINE, False), (scorer.held, ONLINE, False)]
        assert "online store's own time" in answer.note

    def test_no_time_with_a_build_not_materialized_is_answered_historically_at_the_store_s_time(
            self):
        scorer = DictScorer({"a": 0.3}, DAY, pending=True)
        answer = score(scorer, ["a"])
        assert answer.features_from == HISTORICAL and scorer.calls == [HISTORICAL]
        assert [(s.as_of, s.fresh) for s in answer.scores] == [(scorer.held, False)]
        assert "online store's own time" in answer.note
        assert answer.note.endswith("scored from historical features")

    def test_a_past_time_is_answered_from_the_historical_path_and_says_why(self):
        scorer = DictScorer({"a": 0.3}, DAY)
        past = ON_THE_DAY - timedelta(days=40)
        answer = score(scorer, ["a", "nobody"], past)
        assert answer.features_from == HISTORICAL and scorer.calls == [HISTORICAL]
        assert "not the online store's day" in answer.note
        assert [(s.customer_id, s.as_of, s.status) for s in answer.scores] == [
            ("a", past, "active"), ("nobody", past, "unknown")]
        assert answer.freshness == ("freshness", False)  # the historical path's freshness

    def test_every_active_customer_of_the_table_is_scored(self, tmp_path):
        table = tmp_path / "customers.parquet"
        pd.DataFrame({"customer_id": ["a", "b", "later", "gone"],
                      "signup_at": pd.to_datetime(["2025-01-01", "2025-01-01", "2026-04-01",
                                                   "2025-01-01"], utc=True),
                      "churned_at": pd.to_datetime([None, None, None, "2026-01-01"], utc=True),
                      }).to_parquet(table)
        answer = score_active(DictScorer({"a": 0.1, "b": 0.9}, DAY), table, ON_THE_DAY)
        assert [s.customer_id for s in answer.scores] == ["a", "b"]

    def test_without_a_time_a_stale_store_s_active_customers_are_those_of_its_own_time(
            self, tmp_path):
        table = tmp_path / "customers.parquet"
        pd.DataFrame({"customer_id": ["a", "signed up since", "churned since"],
                      "signup_at": pd.to_datetime(["2025-01-01", "2026-06-01", "2025-01-01"],
                                                  utc=True),
                      "churned_at": pd.to_datetime([None, None, "2026-06-01"], utc=True),
                      }).to_parquet(table)
        scorer = DictScorer({"a": 0.1, "churned since": 0.9}, DAY,
                            now=ON_THE_DAY + timedelta(days=200))
        answer = score_active(scorer, table)
        assert [(s.customer_id, s.as_of) for s in answer.scores] == [
            ("a", scorer.held), ("churned since", scorer.held)]

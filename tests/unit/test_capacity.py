"""Precision and recall at capacity, on hand-worked examples; the capacity setting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usage_features.domain.capacity import DEFAULT_CAPACITY, Capacity, CapacityError
from usage_features.ingestion.settings import SettingsError, load_settings
from usage_features.training.evaluate import at_capacity, metrics
from usage_features.training.selection import select

# Two scoring dates: on d1 five active customers (three churn), on d2 four (one churns).
DATES = ["d1"] * 5 + ["d2"] * 4
P = [0.9, 0.8, 0.7, 0.1, 0.2, 0.5, 0.6, 0.4, 0.3]
Y = [1, 0, 1, 0, 1, 0, 1, 0, 0]


class TestCapacity:
    def test_a_count_or_a_share_of_the_dates_active_customers(self):
        assert Capacity.parse(50).of(1000) == 50 and Capacity.parse("50").of(10) == 10
        assert Capacity.parse("5%").of(1000) == 50 and Capacity.parse("5%").of(30) == 2
        assert DEFAULT_CAPACITY.of(3) == 1  # at least one customer is contacted

    @pytest.mark.parametrize("bad", [0, -3, "0%", "120%", "five", "5 %%", True, 2.5])
    def test_anything_else_is_refused(self, bad):
        with pytest.raises(CapacityError):
            Capacity.parse(bad)


class TestAtCapacity:
    def test_two_per_date(self):
        # d1: top 2 are 0.9 (churns) and 0.8 (stays): precision 1/2, recall 1/3 of 3 churners
        # d2: top 2 are 0.6 (churns) and 0.5 (stays): precision 1/2, recall 1/1
        found = at_capacity(Y, P, DATES, Capacity(count=2))
        assert found["precision_at_capacity"] == pytest.approx(0.5)
        assert found["recall_at_capacity"] == pytest.approx((1 / 3 + 1) / 2)

    def test_a_share_is_taken_of_each_dates_own_customers(self):
        # 25 %: d1 contacts ceil(1.25) = 2 (precision 1/2), d2 ceil(1.0) = 1: 0.6, a churner
        found = at_capacity(Y, P, DATES, Capacity(share=0.25))
        assert found["precision_at_capacity"] == pytest.approx((0.5 + 1.0) / 2)
        assert found["recall_at_capacity"] == pytest.approx((1 / 3 + 1) / 2)

    def test_a_date_without_churners_counts_for_precision_not_recall(self):
        found = at_capacity([1, 0, 0, 0], [0.9, 0.1, 0.8, 0.2], ["a", "a", "b", "b"],
                            Capacity(count=1))
        assert found["precision_at_capacity"] == pytest.approx(0.5)
        assert found["recall_at_capacity"] == pytest.approx(1.0)

    def test_ties_keep_the_rows_order(self):
        found = at_capacity([0, 1], [0.5, 0.5], ["a", "a"], Capacity(count=1))
        assert found["precision_at_capacity"] == 0.0

    def test_the_metrics_carry_it_only_with_dates(self):
        assert "precision_at_capacity" not in metrics(Y, P)
        assert metrics(Y, P, DATES, Capacity(count=2))["precision_at_capacity"] == 0.5


class TestSelectingByIt:
    TABLE = pd.DataFrame({"model": ["a", "b"], "pr_auc": [0.6, 0.5], "roc_auc": [0.8, 0.8],
                          "precision_at_capacity": [0.3, 0.4]})

    def test_the_default_ranks_by_pr_auc(self):
        assert select(self.TABLE).winner == "a"

    def test_precision_at_capacity_can_rank_first(self):
        chosen = select(self.TABLE, "precision_at_capacity")
        assert chosen.winner == "b" and chosen.margin["precision_at_capacity"] == pytest.approx(
            0.1)
        assert "precision at capacity +0.100" in chosen.sentence()
        assert chosen.as_dict()["ranked_by"] == ["precision_at_capacity", "roc_auc"]

    def test_an_unknown_metric_is_refused(self):
        with pytest.raises(ValueError, match="cannot select by"):
            select(self.TABLE, "accuracy")


class TestTheSetting:
    def test_it_is_read_from_the_repos_file(self, tmp_path):
        (tmp_path / "usage_features.yaml").write_text("capacity: 40\n")
        assert load_settings(tmp_path).capacity == Capacity(count=40)
        (tmp_path / "usage_features.yaml").write_text("capacity: 2%\n")
        assert load_settings(tmp_path).capacity == Capacity(share=0.02)

    def test_without_it_five_percent(self, tmp_path):
        assert load_settings(tmp_path).capacity == DEFAULT_CAPACITY == Capacity(share=0.05)

    def test_a_bad_value_names_the_file(self, tmp_path):
        (tmp_path / "usage_features.yaml").write_text("capacity: lots\n")
        with pytest.raises(SettingsError, match=r"usage_features\.yaml.*capacity"):
            load_settings(tmp_path)


def test_numpy_dates_work_as_well():
    dates = np.array(["2026-01-01T00:00"] * 5 + ["2026-01-08T00:00"] * 4, dtype="datetime64[us]")
    assert at_capacity(Y, P, dates, Capacity(count=2))["precision_at_capacity"] == 0.5

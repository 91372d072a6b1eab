"""Realized performance: each old-enough snapshot against the churn that happened after it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from usage_features.adapters.score_snapshots import ParquetSnapshots
from usage_features.config import RepoPaths
from usage_features.domain.scores import Score
from usage_features.monitoring.report import realized_performance

HORIZON = 30


def snapshot(day: date, probabilities: dict[str, float]) -> list[Score]:
    as_of = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    return [Score(c, as_of, "active", "v1", p, "low") for c, p in probabilities.items()]


def churning_customers(paths: RepoPaths, n: int, seed: int, first: date, days: int
                       ) -> tuple[dict[str, float], dict]:
    """``n`` customers, each with a probability and, with that probability, a churn 1 to
    ``days`` days after ``first``: written as the repo's customers table."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:03d}" for i in range(n)]
    probabilities = dict(zip(ids, rng.random(n)))
    churn = {c: (pd.Timestamp(first, tz="UTC") + pd.Timedelta(days=int(rng.integers(1, days))))
             if rng.random() < p else pd.NaT for c, p in probabilities.items()}
    paths.customers.parent.mkdir(parents=True)
    pd.DataFrame({"customer_id": ids, "churned_at": pd.to_datetime(list(churn.values()), utc=True)
                  }).to_parquet(paths.customers)
    return probabilities, churn


def test_only_snapshots_whose_horizon_has_passed_are_scored_against_later_churn(tmp_path):
    paths = RepoPaths(tmp_path)
    day1, day2 = date(2025, 3, 1), date(2025, 4, 20)
    probabilities, churn = churning_customers(paths, 200, 0, day1, 60)
    ids = list(probabilities)
    ParquetSnapshots(paths.scores).write(snapshot(day1, probabilities), day1)
    ParquetSnapshots(paths.scores).write(snapshot(day2, probabilities), day2)

    now = datetime.combine(day1 + timedelta(days=HORIZON + 1), datetime.min.time(), tzinfo=UTC)
    [result] = realized_performance(paths, HORIZON, now)  # day2's horizon has not passed

    start = pd.Timestamp(day1, tz="UTC")
    y = np.array([int(pd.notna(churn[c]) and start < churn[c] <= start + pd.Timedelta(
        days=HORIZON)) for c in ids])
    p = np.array([probabilities[c] for c in ids])
    assert result["date"] == str(day1) and result["churned"] == y.sum()
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert result["pr_auc"] == pytest.approx(average_precision_score(y, p))
    top = np.argsort(-p, kind="stable")[:10]  # 5 % of the snapshot's 200 customers
    assert result["precision_at_capacity"] == pytest.approx(y[top].mean())
    assert result["recall_at_capacity"] == pytest.approx(y[top].sum() / y.sum())


def test_each_longer_horizon_is_scored_once_its_own_window_has_passed(tmp_path):
    """A 60-day probability is checked against churn within 60 days, once 60 days passed; a
    snapshot scored before the model had the horizon (its field empty) is left out."""
    paths = RepoPaths(tmp_path)
    day0, day1 = date(2025, 2, 1), date(2025, 3, 1)
    p60, churn = churning_customers(paths, 300, 1, day1, 120)
    ids = list(p60)
    as_of = datetime.combine(day1, datetime.min.time(), tzinfo=UTC)
    with_horizons = [Score(c, as_of, "active", "v2", p / 3, "low",
                           horizon_probabilities=((60, p), (90, min(1.0, p * 1.2))))
                     for c, p in p60.items()]
    ParquetSnapshots(paths.scores).write(snapshot(day0, p60), day0)  # no horizons then
    ParquetSnapshots(paths.scores).write(with_horizons, day1)

    now = as_of + timedelta(days=61)
    [result] = realized_performance(paths, 60, now, column="churn_probability_60d")
    assert realized_performance(paths, 90, now, column="churn_probability_90d") == []

    start = pd.Timestamp(day1, tz="UTC")
    y = np.array([int(pd.notna(churn[c]) and churn[c] <= start + pd.Timedelta(days=60))
                  for c in ids])
    p = np.array([p60[c] for c in ids])
    assert result["date"] == str(day1) and result["rows"] == 300
    assert result["churned"] == y.sum() and 0 < y.sum() < 300
    assert result["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert result["pr_auc"] == pytest.approx(average_precision_score(y, p))

"""Rolling-origin backtest: no fold trains on a row whose label window reaches its test period.

Checked on the rows each candidate was actually fitted on (a recording classifier), not only on
the fold definitions.
"""

from __future__ import annotations

import typing
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from usage_features.training.backtest import (
    paired_differences,
    rolling_origin_folds,
    run_backtest,
    spread,
)
from usage_features.training.labels import LabelError
from usage_features.training.selection import Candidate

HORIZON = 30


def weekly_rows(weeks: int = 40, customers: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2025-01-06", periods=weeks, freq="7D", tz="UTC")
    frame = pd.DataFrame({
        "customer_id": np.tile([f"c{i}" for i in range(customers)], weeks),
        "event_timestamp": np.repeat(times, customers),
        "x": rng.normal(size=weeks * customers),
    })
    frame["label"] = (rng.random(len(frame)) < 1 / (1 + np.exp(2 - frame.x))).astype(int)
    return frame


class Recorder(BaseEstimator, ClassifierMixin):
    """Scores ``x``; remembers every frame it was fitted on."""

    fits: typing.ClassVar[list[pd.DataFrame]] = []

    def fit(self, X, y):
        Recorder.fits.append(X.copy())
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-X["x"].to_numpy()))
        return np.column_stack([1 - p, p])


def test_no_fold_trains_on_a_row_whose_label_window_reaches_its_test_period():
    rows = weekly_rows()
    Recorder.fits = []
    per_fold = run_backtest(rows, [Candidate("recorder", lambda y: Recorder())], HORIZON, 4)
    folds = rolling_origin_folds(rows, HORIZON, 4)
    assert len(Recorder.fits) == len(folds) == 4
    horizon = pd.Timedelta(days=HORIZON)
    for fitted, fold, (_, result) in zip(Recorder.fits, folds, per_fold.iterrows()):
        test_start = fold.test.event_timestamp.min()
        assert (fitted.event_timestamp + horizon <= test_start).all()
        # every row that could be used is: only the purged ones are left out
        usable = rows[rows.event_timestamp + horizon <= test_start]
        assert len(fitted) == len(usable) == result.train_rows
        assert fitted.event_timestamp.max() + horizon > test_start - pd.Timedelta(days=7)
        assert not set(zip(fitted.customer_id, fitted.event_timestamp)) & set(
            zip(fold.test.customer_id, fold.test.event_timestamp))
        assert result.test_rows == len(fold.test) and str(test_start) == result.test_start


def test_the_test_periods_are_consecutive_cover_the_last_quarter_and_each_is_scored():
    rows = weekly_rows()
    folds = rolling_origin_folds(rows, HORIZON, 3)
    times = np.sort(rows.event_timestamp.unique())
    tested = np.concatenate([np.sort(f.test.event_timestamp.unique()) for f in folds])
    np.testing.assert_array_equal(tested, times[-10:])  # a quarter of 40 weeks
    assert [f.test_start < g.test_start for f, g in pairwise(folds)] == [True, True]
    assert all(len(f.train) < len(g.train) for f, g in pairwise(folds))  # expanding


def test_the_spread_is_the_mean_std_min_and_max_over_the_folds():
    per_fold = run_backtest(weekly_rows(), [Candidate("recorder", lambda y: Recorder())],
                            HORIZON, 3)
    auc = per_fold.roc_auc.to_numpy()
    row = spread(per_fold).set_index(["model", "metric"]).loc[("recorder", "roc_auc")]
    assert row["mean"] == pytest.approx(auc.mean())
    assert row["std"] == pytest.approx(auc.std(ddof=1))
    assert (row["min"], row["max"]) == (auc.min(), auc.max())


def test_too_many_folds_for_the_history_is_a_clear_error():
    with pytest.raises(LabelError, match="fewer folds"):
        rolling_origin_folds(weekly_rows(weeks=6), HORIZON, 6)


def test_paired_differences_are_fold_by_fold_against_the_reference():
    per_fold = pd.DataFrame({"fold": [1, 1, 2, 2, 3, 3], "model": ["a", "b"] * 3,
                             "roc_auc": [0.80, 0.82, 0.70, 0.71, 0.90, 0.89],
                             "pr_auc": [0.3, 0.3, 0.2, 0.25, 0.4, 0.5]})
    (row,) = paired_differences(per_fold, "a").query("metric == 'roc_auc'").itertuples()
    d = np.array([0.02, 0.01, -0.01])
    assert (row.model, row.versus, row.folds_higher, row.folds) == ("b", "a", 2, 3)
    assert row.mean == pytest.approx(d.mean()) and row.std == pytest.approx(d.std(ddof=1))
    assert (row.min, row.max) == (pytest.approx(-0.01), pytest.approx(0.02))

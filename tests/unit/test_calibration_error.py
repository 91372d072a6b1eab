"""The expected calibration error (quantile bins) against a brute-force computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from usage_features.training.evaluate import expected_calibration_error, metrics


def brute_force_ece(y, p, bins: int = 10) -> float:
    """Row by row: each score's bin is the number of inner quantile edges below it (an equal
    score goes to the lower bin, as ``calibration_curve``); then sum over the bins of
    (rows in the bin / all rows) * |mean label - mean score|."""
    edges = [float(np.percentile(p, 100 * k / bins)) for k in range(1, bins)]
    members: dict[int, list[int]] = {}
    for i, score in enumerate(p):
        members.setdefault(sum(1 for edge in edges if edge < score), []).append(i)
    total = 0.0
    for rows in members.values():
        total += len(rows) / len(p) * abs(sum(y[i] for i in rows) / len(rows)
                                          - sum(p[i] for i in rows) / len(rows))
    return total


@pytest.mark.parametrize("seed", range(5))
def test_ece_equals_the_brute_force_computation(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    p = rng.beta(1, 12, n)
    if seed % 2:  # isotonic-like steps: many tied scores, so tied quantile edges
        p = np.round(p, 2)
    y = (rng.random(n) < np.clip(p * rng.uniform(0.5, 2), 0, 1)).astype(int)
    assert expected_calibration_error(y, p) == pytest.approx(brute_force_ece(y, p), abs=1e-12)


def test_ece_is_the_weighted_gap_of_the_calibration_curve_without_empty_bins():
    rng = np.random.default_rng(9)
    p = rng.random(1000)  # no ties: ten bins of 100 rows
    y = (rng.random(1000) < p ** 2).astype(int)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    assert expected_calibration_error(y, p) == pytest.approx(
        np.mean(np.abs(observed - predicted)), abs=1e-12)


def test_perfectly_calibrated_bins_have_no_error_and_a_constant_miss_is_measured():
    p = np.repeat([0.1, 0.5], 10)
    y = np.array([1] + [0] * 9 + [1] * 5 + [0] * 5)
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(y, np.full(20, 0.6)) == pytest.approx(0.3)


def test_ece_is_one_of_the_reported_metrics():
    y, p = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.4])
    assert metrics(y, p)["ece"] == expected_calibration_error(y, p)

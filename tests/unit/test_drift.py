"""PSI against a brute-force computation: sorted lists, loops and the textbook formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.reference import brute_force_psi
from usage_features.monitoring.drift import feature_drift, psi


class TestPopulationStabilityIndex:
    def test_equals_brute_force_on_a_shifted_normal(self):
        rng = np.random.default_rng(1)
        reference, current = rng.normal(0, 1, 4000), rng.normal(0.5, 1.2, 3000)
        assert psi(reference, current) == pytest.approx(brute_force_psi(reference, current),
                                                        rel=1e-12)

    def test_equals_brute_force_on_counts_with_ties_and_an_empty_bin(self):
        rng = np.random.default_rng(2)
        reference = rng.poisson(3, 5000).astype(float)
        reference[:2000] = 0  # ties: the zeros share one bin
        current = rng.poisson(1, 2000).astype(float)  # halved activity, nothing at the top
        value = psi(reference, current)
        assert value == pytest.approx(brute_force_psi(reference, current), rel=1e-12)
        assert value > 0.25

    def test_same_distribution_gives_a_small_psi(self):
        rng = np.random.default_rng(3)
        assert psi(rng.normal(size=20000), rng.normal(size=20000)) < 0.01

    def test_nulls_are_not_binned_but_reported(self):
        reference = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
        current = np.array([1.0, 2.0, np.nan, np.nan, np.nan, np.nan])
        drift = feature_drift("adoption_score_latest", reference, current, bins=4)
        assert drift.psi == pytest.approx(brute_force_psi(reference, current, bins=4))
        assert (drift.reference_null_share, drift.current_null_share) == (0.2, pytest.approx(4 / 6))
        assert drift.alarm

    def test_a_feature_with_no_values_has_no_psi(self):
        assert math.isnan(psi(np.array([np.nan]), np.array([1.0])))

    def test_unchanged_feature_raises_no_alarm(self):
        rng = np.random.default_rng(4)
        values = rng.exponential(size=5000)
        assert not feature_drift("x", values, rng.permutation(values)).alarm

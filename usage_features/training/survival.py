"""A time-to-churn model: a ridge-penalised Cox proportional-hazards fit, kept as arrays.

Fitted with scikit-survival's ``CoxPHSurvivalAnalysis`` on right-censored rows (see
:func:`~usage_features.training.labels.survival_rows`), then kept as plain NumPy arrays: the
features' preparation (median fill with missing-value indicators, signed log, standardising:
the logistic baseline's), the coefficients and Breslow's baseline cumulative hazard. Scoring is
a few array operations on the feature matrix, needs no scikit-survival, and the saved model
holds no type beyond NumPy arrays.

A customer's survival curve is ``S(t | x) = exp(-H0(t) * exp(z(x) . beta))``: the churn
probability within ``h`` days is ``1 - S(h | x)``; the median time to churn is the first
time where ``S <= 1/2`` (none where the curve stays above one half up to the longest
follow-up the data has).
"""

from __future__ import annotations

import math

import numpy as np

#: The ridge penalty (scikit-survival's ``alpha``: half of it times the squared coefficients is
#: added to the negative partial log-likelihood, a sum over churns).
RIDGE = 1.0
#: The arrays a :class:`CoxCurves` is made of (its saved form).
ARRAYS = ("fill", "indicators", "mean", "scale", "coef", "times", "cum_hazard")


class CoxCurves:
    """A fitted Cox model as arrays; :func:`fit_cox` makes one."""

    def __init__(self, fill, indicators, mean, scale, coef, times, cum_hazard):
        self.fill = np.asarray(fill, dtype=np.float64)
        self.indicators = np.asarray(indicators, dtype=np.intp)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.times = np.asarray(times, dtype=np.float64)
        self.cum_hazard = np.asarray(cum_hazard, dtype=np.float64)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAYS}

    @classmethod
    def from_dict(cls, arrays: dict) -> CoxCurves:
        return cls(*(arrays[name] for name in ARRAYS))

    def risk(self, matrix: np.ndarray) -> np.ndarray:
        """The linear predictor ``z(x) . beta`` of each row (higher: churns sooner)."""
        return _prepare(matrix, self.fill, self.indicators, self.mean, self.scale) @ self.coef

    def hazard_at(self, days) -> np.ndarray:
        """``H0`` at each of ``days`` (a step function: 0 before the first churn time)."""
        at = np.searchsorted(self.times, np.asarray(days, dtype=np.float64), side="right") - 1
        return np.where(at >= 0, self.cum_hazard[np.maximum(at, 0)], 0.0)

    def churn_probability(self, matrix: np.ndarray, horizons, risk=None) -> np.ndarray:
        """``1 - S(h | x)``: one row per matrix row, one column per horizon (in days);
        ``risk``: the rows' :meth:`risk`, if already computed."""
        relative = np.exp(self.risk(matrix) if risk is None else risk)
        return -np.expm1(-np.outer(relative, self.hazard_at(horizons)))

    def median_days(self, matrix: np.ndarray, risk=None) -> np.ndarray:
        """The median time to churn in days, NaN where the curve stays above one half."""
        needed = math.log(2) * np.exp(-(self.risk(matrix) if risk is None else risk))
        at = np.searchsorted(self.cum_hazard, needed, side="left")
        found = at < len(self.times)
        return np.where(found, self.times[np.minimum(at, len(self.times) - 1)], np.nan)


def _prepare(matrix, fill, indicators, mean, scale) -> np.ndarray:
    """Fill missing (and infinite) values with the training medians, add an indicator of
    missing for each column that had missing values in training, signed-log, standardise."""
    matrix = np.asarray(matrix, dtype=np.float64)
    missing = ~np.isfinite(matrix)
    values = np.where(missing, fill, matrix)
    values = np.sign(values) * np.log1p(np.abs(values))
    design = np.concatenate([values, missing[:, indicators].astype(np.float64)], axis=1)
    return (design - mean) / scale


def fit_cox(matrix: np.ndarray, duration_days, churned, ridge: float = RIDGE) -> CoxCurves:
    """Fit the Cox model on right-censored rows: ``duration_days`` to the churn (``churned``)
    or to the end of follow-up (not ``churned``)."""
    # deferred: scikit-survival is needed to fit a model, never to score one
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    matrix = np.asarray(matrix, dtype=np.float64)
    event = np.asarray(churned, dtype=bool)
    if not event.any():
        raise ValueError("no churn in the survival rows: a time-to-churn model needs some")
    finite = np.where(np.isfinite(matrix), matrix, np.nan)
    with np.errstate(all="ignore"):
        fill = np.nanmedian(finite, axis=0) if len(matrix) else np.zeros(matrix.shape[1])
    fill = np.where(np.isfinite(fill), fill, 0.0)
    indicators = np.flatnonzero((~np.isfinite(matrix)).any(axis=0))
    raw = _prepare(matrix, fill, indicators, 0.0, 1.0)
    mean, scale = raw.mean(axis=0), raw.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    design = (raw - mean) / scale
    model = CoxPHSurvivalAnalysis(alpha=ridge, ties="breslow")
    model.fit(design, Surv.from_arrays(event, np.asarray(duration_days, dtype=np.float64)))
    baseline = model.cum_baseline_hazard_
    return CoxCurves(fill, indicators, mean, scale, model.coef_, baseline.x, baseline.y)


def concordance(duration_days, churned, risk) -> float:
    """Harrell's concordance index of ``risk`` (higher: churns sooner) on censored rows."""
    # deferred: scikit-survival is needed to evaluate a model, never to score one
    from sksurv.metrics import concordance_index_censored

    return float(concordance_index_censored(np.asarray(churned, dtype=bool),
                                            np.asarray(duration_days, dtype=np.float64),
                                            np.asarray(risk, dtype=np.float64))[0])

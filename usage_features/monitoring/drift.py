"""Population stability index (PSI): how far a feature's distribution moved from a reference.

``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over bins, where ``e_i`` is the reference's share of
non-null values in bin ``i`` and ``a_i`` the current share. The bins are the reference's
quantiles (so each holds about as much of the reference), merged where ties make them empty, so
a count feature with many zeros gets one bin for its zeros. An empty share is floored at
``EPSILON`` so a bin one side never fills gives a large, finite PSI. Nulls are not binned: their
share is reported beside the PSI, and a change in it is flagged on its own.

Rules of thumb (the industry's, kept as defaults): PSI < 0.1 no shift, 0.1-0.25 moderate,
> 0.25 major.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The share an empty bin counts as, so ln(a / e) stays finite.
EPSILON = 1e-4
DEFAULT_BINS = 10
#: PSI at or above this is flagged.
PSI_ALARM = 0.25
#: A null share that moved by this much (absolute) is flagged.
NULL_SHARE_ALARM = 0.1


@dataclass(frozen=True)
class Drift:
    """One feature's drift between a reference sample and a current one."""

    feature: str
    psi: float
    reference_null_share: float
    current_null_share: float
    reference_rows: int
    current_rows: int

    @property
    def alarm(self) -> bool:
        return (self.psi >= PSI_ALARM
                or abs(self.current_null_share - self.reference_null_share) >= NULL_SHARE_ALARM)


def bin_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Inner cut points: the reference's distinct quantiles (values <= a cut go left of it)."""
    values = reference[np.isfinite(reference)]
    if values.size == 0:
        return np.array([])
    quantiles = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="higher")
    return np.unique(quantiles)


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each bin's share of the non-null values (bins: ``(-inf, e0], (e0, e1], ..., (ek, inf]``)."""
    values = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(edges, values, side="left"),
                         minlength=edges.size + 1)
    return counts / max(values.size, 1)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """The PSI of ``current`` against ``reference`` (NaNs ignored); NaN if either has no values."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if np.isnan(reference).all() or np.isnan(current).all():
        return float("nan")
    edges = bin_edges(reference, bins)
    expected = np.maximum(shares(reference, edges), EPSILON)
    actual = np.maximum(shares(current, edges), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def feature_drift(feature: str, reference, current, bins: int = DEFAULT_BINS) -> Drift:
    """PSI and null shares of one feature (``reference`` and ``current``: numeric arrays)."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    return Drift(feature, psi(reference, current, bins),
                 _null_share(reference), _null_share(current), reference.size, current.size)


def _null_share(values: np.ndarray) -> float:
    return float(np.isnan(values).mean()) if values.size else float("nan")

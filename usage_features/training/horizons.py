"""Churn risk at several horizons: one time-to-churn model, or a classifier where it wins.

For each horizon ``h`` (``horizons:`` in ``usage_features.yaml``, default 60 and 90 days, each
longer than the classifier's ``--horizon-days``) the Cox model of
:mod:`usage_features.training.survival` and a classifier trained for ``h`` alone (the kind
the selection shipped) are fitted before a later test period and compared on it against that
horizon's labels; the survival model ships unless the classifier beats it by the selection's
metric (then ROC AUC). The survival model is fitted on every observation row before the test
period, right-censored at its start (so rows whose window runs into it count up to it); the
classifier only on the rows whose window ends by then. What ships is refitted on every row.

Scoring always gives ``churn_probability <= p(h1) <= p(h2) ...``: the probabilities are a
cumulative maximum in ascending horizon order (a churn within 60 days is a churn within 90).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from usage_features.domain.capacity import Capacity
from usage_features.domain.scores import DEFAULT_HORIZONS
from usage_features.domain.scores import horizon_field as horizon_column
from usage_features.features.retrieval import TIMESTAMP
from usage_features.training import evaluate
from usage_features.training.compiled import compile_pipeline, predict_churn
from usage_features.training.labels import censor_at, horizon_labels
from usage_features.training.selection import select
from usage_features.training.survival import CoxCurves, concordance, fit_cox

SURVIVAL = "survival"
CLASSIFIER = "classifier"
DURATION, CHURNED = "duration_days", "churned"
#: Test rows a concordance index is computed on, at most (a fixed sample beyond): scikit-
#: survival compares each churn with every row followed longer, minutes at 10^8 events.
CONCORDANCE_ROWS = 100_000


def monotone(base: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """``horizons`` (one column per horizon, ascending) made non-decreasing from ``base`` (the
    shortest horizon's probability) on: their cumulative maximum."""
    stacked = np.column_stack([np.asarray(base, dtype=np.float64), horizons])
    return np.maximum.accumulate(stacked, axis=1)[:, 1:]


def median_agreeing(days: np.ndarray, probabilities: np.ndarray, horizons) -> np.ndarray:
    """``days`` (the survival curve's median days to churn, NaN: none) where it agrees with
    the probability given at every horizon (one column per horizon of ``horizons``, shortest
    first: ``p(h) >= 1/2`` exactly when the median is at most ``h`` days), else NaN.

    The shortest horizon's probability always comes from the classifier, and a longer one's
    may; a median that contradicts the probabilities beside it is not given."""
    days = np.asarray(days, dtype=np.float64)
    within = days[:, None] <= np.asarray(horizons, dtype=np.float64)[None, :]  # NaN: never
    agrees = (np.asarray(probabilities, dtype=np.float64) >= 0.5) == within
    return np.where(agrees.all(axis=1), days, np.nan)


class HorizonModel:
    """What scores the horizons: the Cox curves and, per horizon, what ships (the curves or a
    classifier pipeline)."""

    def __init__(self, horizons, curves: CoxCurves, classifiers: dict[int, Pipeline],
                 n_features: int):
        self.horizons = tuple(int(h) for h in horizons)
        self.curves = curves
        self.classifiers = dict(classifiers)
        self.n_features = n_features
        self.compiled = {h: compile_pipeline(p, n_features) for h, p in self.classifiers.items()}

    def to_dict(self) -> dict:
        """The saved form: NumPy arrays, strings and pipelines only."""
        return {"horizons": np.array(self.horizons, dtype=np.int64),
                "curves": self.curves.to_dict(),
                "classifiers": {str(h): p for h, p in self.classifiers.items()},
                "n_features": np.array([self.n_features], dtype=np.int64)}

    @classmethod
    def from_dict(cls, saved: dict | None) -> HorizonModel | None:
        if not saved:
            return None
        return cls(saved["horizons"].tolist(), CoxCurves.from_dict(saved["curves"]),
                   {int(h): p for h, p in saved["classifiers"].items()},
                   int(saved["n_features"][0]))

    def shipped(self, horizon: int) -> str:
        return CLASSIFIER if horizon in self.classifiers else SURVIVAL

    def predict(self, matrix: np.ndarray, base: np.ndarray,
                frame: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the probability at each horizon (columns in :attr:`horizons` order,
        non-decreasing from ``base``) and the median days to churn (NaN: none).

        ``matrix`` holds the model's features in order; a classifier gets ``frame`` (its
        pipeline selects the columns) when given, else the matrix."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if not len(matrix):
            return np.zeros((0, len(self.horizons))), np.zeros(0)
        risk = self.curves.risk(matrix)
        out = self.curves.churn_probability(matrix, self.horizons, risk)
        for column, horizon in enumerate(self.horizons):
            if horizon in self.classifiers:
                out[:, column] = self._classify(horizon, matrix, frame)
        return monotone(base, out), self.curves.median_days(matrix, risk)

    def _classify(self, horizon: int, matrix: np.ndarray, frame) -> np.ndarray:
        compiled, pipeline = self.compiled[horizon], self.classifiers[horizon]
        if frame is not None:
            return pipeline.predict_proba(frame)[:, 1]
        return predict_churn(pipeline, compiled, matrix)


@dataclass
class HorizonResult:
    """What :func:`fit_horizons` measured and what ships."""

    model: HorizonModel | None
    #: one row per horizon and model: horizon, model, shipped, the metrics, c_index
    table: pd.DataFrame
    #: for the metadata (see :func:`metadata`)
    summary: dict = field(default_factory=dict)


def follow_up_days(rows: pd.DataFrame, end: pd.Timestamp) -> np.ndarray:
    """Days from each row's observation time to ``end`` (the end of the data)."""
    return ((end - rows[TIMESTAMP]) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64)


def fit_horizons(rows: pd.DataFrame, features: list[str], horizons, cutoff: pd.Timestamp,
                 build_classifier: Callable[[np.ndarray], Pipeline], classifier_name: str,
                 validation_share: float = 0.25, capacity: Capacity | None = None,
                 select_by: str = "pr_auc",
                 progress: Callable[[str], None] = lambda _: None) -> HorizonResult:
    """Evaluate each horizon on its later test period, then fit what ships on every row.

    ``rows`` are survival rows (:func:`~usage_features.training.labels.survival_rows`) with
    the features; ``cutoff`` the end of the data they were censored at. A horizon the data
    cannot test (too few observation times whose window it covers, or one class only) is left
    out, its reason in the summary: no probability rather than an untested one.
    """
    cutoff = pd.Timestamp(cutoff)
    matrix = rows[features].to_numpy(dtype=np.float64, na_value=np.nan)
    duration, churned = rows[DURATION].to_numpy(np.float64), rows[CHURNED].to_numpy(bool)
    follow = follow_up_days(rows, cutoff)
    tables, shipped, skipped, classifiers = [], {}, {}, {}
    for horizon in sorted(int(h) for h in horizons):
        progress(f"horizon {horizon} days: survival model vs a {horizon}-day classifier")
        try:
            table = _evaluate(rows, matrix, duration, churned, follow, horizon,
                              build_classifier, classifier_name, validation_share, capacity,
                              select_by)
        except ValueError as exc:
            skipped[str(horizon)] = str(exc)
            continue
        winner = table.loc[table.shipped, "model"].iloc[0]
        shipped[str(horizon)] = SURVIVAL if winner == SURVIVAL else CLASSIFIER
        if winner != SURVIVAL:
            label = horizon_labels(duration, churned, follow, horizon)
            known = ~np.isnan(label)
            classifiers[horizon] = build_classifier(label[known]).fit(
                rows[known], label[known].astype(int))
        tables.append(table)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    summary = {"horizons": [int(h) for h in sorted(horizons)], "shipped": shipped,
               "skipped": skipped, "metrics": _metrics_summary(table)}
    if not shipped:
        return HorizonResult(None, table, summary)
    progress(f"refitting the survival model on all {len(rows):,} rows (censored at the end)")
    curves = fit_cox(matrix, duration, churned)
    kept = sorted(int(h) for h in shipped)
    return HorizonResult(HorizonModel(kept, curves, classifiers, len(features)), table, summary)


def _evaluate(rows, matrix, duration, churned, follow, horizon, build_classifier,
              classifier_name, validation_share, capacity, select_by) -> pd.DataFrame:
    label = horizon_labels(duration, churned, follow, horizon)
    known = ~np.isnan(label)
    times = np.sort(rows[TIMESTAMP][known].unique())
    if len(times) < 2:
        raise ValueError(f"fewer than two observation times are followed for {horizon} days")
    split = pd.Timestamp(times[min(len(times) - 1, int(len(times) * (1 - validation_share)))])
    at = rows[TIMESTAMP].to_numpy()
    before = (rows[TIMESTAMP] < split).to_numpy()
    test = known & ~before
    # the classifier: rows whose whole window ends by the test period's start
    to_split = ((split - rows[TIMESTAMP]) / pd.Timedelta(days=1)).to_numpy(np.float64)
    train = before & (to_split >= horizon)
    for period, mask in (("training", train), ("test", test)):
        if len(np.unique(label[mask])) < 2:
            raise ValueError(f"the {horizon}-day {period} period ({int(mask.sum()):,} rows) "
                             "does not hold both churners and non-churners")
    y_test = label[test].astype(int)
    dates = at[test]
    curves = fit_before(rows, matrix, duration, churned, split)
    survival_p = curves.churn_probability(matrix[test], [horizon])[:, 0]
    classifier = build_classifier(label[train]).fit(rows[train], label[train].astype(int))
    classifier_p = classifier.predict_proba(rows[test])[:, 1]
    # concordance over the test period's rows, each followed to the end of the data (a fixed
    # sample of them beyond CONCORDANCE_ROWS: scikit-survival's count is quadratic)
    later = concordance_rows(~before)
    scores = {SURVIVAL: (survival_p, curves.risk(matrix[later])),
              f"{classifier_name} ({horizon}-day classifier)":
                  (classifier_p, classifier.predict_proba(rows[later])[:, 1])}
    table = pd.DataFrame([
        {"model": name, **evaluate.metrics(y_test, p, dates, capacity),
         "c_index": concordance(duration[later], churned[later], risk)}
        for name, (p, risk) in scores.items()])
    winner = select(table.drop(columns="c_index"), select_by).winner
    table.insert(0, "horizon_days", horizon)
    table.insert(2, "shipped", table.model == winner)
    table["test_start"] = str(split)
    table["c_index_rows"] = int(later.sum())
    table["train_rows_survival"] = int(before.sum())
    table["train_rows_classifier"] = int(train.sum())
    table["test_rows"] = int(test.sum())
    table["test_churners"] = int(y_test.sum())
    return table


def concordance_rows(mask: np.ndarray, limit: int | None = None) -> np.ndarray:
    """``mask``, or a fixed random sample of ``limit`` (:data:`CONCORDANCE_ROWS`) of its
    rows when it holds more: the rows a concordance index is computed on."""
    limit = CONCORDANCE_ROWS if limit is None else limit
    where = np.flatnonzero(mask)
    if len(where) <= limit:
        return mask
    out = np.zeros_like(mask, dtype=bool)
    out[np.random.default_rng(0).choice(where, limit, replace=False)] = True
    return out


def fit_before(rows: pd.DataFrame, matrix: np.ndarray, duration, churned,
               split: pd.Timestamp) -> CoxCurves:
    """The survival model as known at ``split``: every row observed before it, censored at it
    (a churn after ``split`` is not an event; no duration runs past it)."""
    before = (rows[TIMESTAMP] < split).to_numpy()
    to_split = ((split - rows[TIMESTAMP][before]) / pd.Timedelta(days=1)).to_numpy(np.float64)
    cut_duration, cut_event = censor_at(np.asarray(duration)[before],
                                        np.asarray(churned)[before], to_split)
    return fit_cox(matrix[before], cut_duration, cut_event)


def _metrics_summary(table: pd.DataFrame) -> dict:
    """Per horizon and model, the metrics (for the model's metadata)."""
    out: dict = {}
    for row in table.to_dict("records"):
        out.setdefault(str(row["horizon_days"]), {})[row["model"]] = {
            k: (v.item() if isinstance(v, np.generic) else v)
            for k, v in row.items() if k not in ("horizon_days", "model")}
    return out


__all__ = ["CLASSIFIER", "DEFAULT_HORIZONS", "SURVIVAL", "HorizonModel", "HorizonResult",
           "fit_horizons", "horizon_column", "monotone"]

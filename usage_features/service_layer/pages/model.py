"""The model page: the shipped model's validation metrics against its baselines, its
calibration and precision-recall curves, the feature groups' importance, the training window
and the event vocabulary.

The curves are computed from data, not read from the training report's pictures: the model's
validation-period scores (``validation_reference.parquet`` in its report folder, written by
``train``) against the labels those rows had, recomputed from the customers table (churned
within ``horizon_days`` after the row's time: the training labels' definition). Computed once
per model and customers table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from usage_features.service_layer.pages.data import PageData, file_stamp
from usage_features.training.report import REFERENCE_FILE

#: Calibration bins (quantiles of the predicted probability: as many rows in each).
CALIBRATION_BINS = 10
#: Points of the precision-recall curve drawn (evenly spaced in recall).
PR_POINTS = 41
SHIPPED = "model"


@dataclass(frozen=True)
class MetricsRow:
    model: str
    shipped: bool
    metrics: dict[str, float]


@dataclass(frozen=True)
class CurvePoint:
    x: float
    y: float
    rows: int = 0


@dataclass(frozen=True)
class GroupImportance:
    group: str
    #: The sum of its features' permutation importance (ROC AUC drop on validation).
    auc_drop: float
    features: list[tuple[str, float]]


@dataclass(frozen=True)
class ModelView:
    model_version: str
    created_at: str
    feature_service: str
    horizon_days: int
    features: int
    train_window: dict[str, str]
    metric_names: list[str]
    metrics: list[MetricsRow]
    selection: dict
    risk_bands: dict[str, float]
    vocabulary: list[tuple[str, str]]  # (event name, role)
    unlisted: str
    adoption: str
    calibration: list[CurvePoint] = field(default_factory=list)
    precision_recall: list[CurvePoint] = field(default_factory=list)
    validation_rows: int = 0
    base_rate: float | None = None
    importance: list[GroupImportance] = field(default_factory=list)
    #: Why a curve or the importance is missing (no report folder, no customers table).
    missing: list[str] = field(default_factory=list)
    repo: str = ""


def model_view(data: PageData) -> ModelView:
    """Everything the model page shows."""
    context = data.context
    meta = context.model.metadata
    report = context.paths.reports / meta.model_version
    key = (meta.model_version, file_stamp(report / REFERENCE_FILE),
           file_stamp(context.paths.customers))
    calibration, pr, rows_n, base_rate, missing = data.cached(
        "model_curves", key, lambda: _curves(data))
    metric_names = list(dict.fromkeys(k for m in meta.metrics.values() for k in m))
    rows = [MetricsRow(name, name == meta.selection.get("winner"), values)
            for name, values in meta.metrics.items() if name != SHIPPED]
    vocabulary = meta.event_vocabulary
    return ModelView(
        meta.model_version, meta.created_at, meta.feature_service, meta.horizon_days,
        len(meta.features), dict(meta.train_window), metric_names, rows, dict(meta.selection),
        dict(context.scorer.bands),
        [(t.name, t.role.value if t.role else "") for t in vocabulary.types],
        vocabulary.unlisted.value, vocabulary.adoption.value, calibration=calibration,
        precision_recall=pr, validation_rows=rows_n, base_rate=base_rate, missing=missing,
        importance=_importance(data, report / "permutation_importance.csv"),
        repo=str(context.repo))


def _curves(data: PageData) -> tuple:
    """(calibration, precision-recall, validation rows, base rate, what is missing)."""
    meta = data.context.model.metadata
    reference = data.context.paths.reports / meta.model_version / REFERENCE_FILE
    customers = data.customers()
    missing = []
    if not reference.exists():
        missing.append(f"no validation scores ({reference} is written by `train`)")
    if customers.empty:
        missing.append("no customers table to label the validation rows "
                       "(`usage-features load-customers`)")
    if missing:
        return [], [], 0, None, missing
    rows = pd.read_parquet(reference, columns=["customer_id", "event_timestamp",
                                               "churn_probability"])
    churned = customers.churned_at.reindex(rows.customer_id).reset_index(drop=True)
    at = pd.to_datetime(rows.event_timestamp, utc=True)
    horizon = pd.Timedelta(days=meta.horizon_days)
    label = ((churned > at) & (churned <= at + horizon)).to_numpy(dtype=int)  # NaT: False
    p = rows.churn_probability.to_numpy(dtype=float)
    if label.min() == label.max():
        return [], [], len(rows), float(label.mean()), [
            "the validation rows' labels have one class only: no curves"]
    calibration = calibration_points(label, p)
    precision, recall, _ = precision_recall_curve(label, p)
    grid = np.linspace(0, 1, PR_POINTS)
    # the best precision at a recall of at least each grid value (the curve's upper envelope)
    order = np.argsort(recall)
    best = np.maximum.accumulate(precision[order][::-1])[::-1]
    at_recall = np.searchsorted(recall[order], grid, side="left").clip(0, len(order) - 1)
    pr = [CurvePoint(float(r), float(best[i])) for r, i in zip(grid, at_recall)]
    return calibration, pr, len(rows), float(label.mean()), []


def calibration_points(label: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS
                       ) -> list[CurvePoint]:
    """Rows in ``bins`` quantile bins of the predicted probability: each bin's mean prediction
    against its share of churners, and its row count (bins that coincide are merged)."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    out = []
    for b in np.unique(which):
        chosen = which == b
        out.append(CurvePoint(float(p[chosen].mean()), float(label[chosen].mean()),
                              int(chosen.sum())))
    return out


def _importance(data: PageData, path) -> list[GroupImportance]:
    if not path.exists():
        return []
    table = pd.read_csv(path)
    drops = dict(zip(table.feature, table.mean_auc_drop.astype(float)))
    out = []
    for group, names in data.spec.groups.items():
        features = sorted(((n, drops[n]) for n in names if n in drops), key=lambda f: -f[1])
        if features:
            out.append(GroupImportance(str(group), sum(d for _, d in features), features))
    return sorted(out, key=lambda g: -g.auc_drop)


__all__ = ["CurvePoint", "GroupImportance", "MetricsRow", "ModelView", "model_view"]

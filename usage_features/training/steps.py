"""The named steps of :func:`usage_features.training.train.train` after the data is in hand:
compare the candidates, ablate, measure importance, summarise a backtest, write the metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.domain.capacity import Capacity
from usage_features.features.retrieval import TIMESTAMP
from usage_features.features.spec import FeatureSpec, Group, feature_spec
from usage_features.features.store import SERVICE_NAME
from usage_features.ingestion.settings import load_vocabulary
from usage_features.training import evaluate
from usage_features.training.backtest import paired_differences, spread
from usage_features.training.metadata import (
    ModelMetadata,
    installed_versions,
    training_data_hash,
)
from usage_features.training.reference_values import reference_values
from usage_features.training.selection import (
    Candidate,
    Selection,
    candidates,
    fit_all,
    metrics_table,
    score_all,
    select,
)

if TYPE_CHECKING:
    from usage_features.training.train import Periods, TrainConfig

#: The feature groups whose worth the ablation measures: the domain's claims (usage decay, low
#: adoption, no integrations or monitoring runs). Each refit costs a model fit, so not every
#: group is refit without.
ABLATED_GROUPS = (Group.DECAY, Group.ADOPTION, Group.INTEGRATION_MONITORING, Group.CORE_LOCK_IN)


def ablations(spec: FeatureSpec | None = None) -> dict[str, tuple[str, ...]]:
    """One refit without each ablated group's served features, as the spec groups them (a
    renamed or added feature is dropped with its group; a group the vocabulary lacks is
    not refit)."""
    groups = (spec or feature_spec()).groups
    return {f"without {group} features": tuple(groups[group])
            for group in ABLATED_GROUPS if group in groups}


#: The default vocabulary's ablations.
ABLATIONS = ablations()


def compare_candidates(models: list[Candidate], periods: Periods,
                       capacity: Capacity | None = None, select_by: str = "pr_auc"
                       ) -> tuple[dict[str, Pipeline], dict[str, np.ndarray], pd.DataFrame,
                                  Selection]:
    """Fit every candidate on the training rows, score the validation rows (precision at
    ``capacity`` per observation date too), pick the best by ``select_by``."""
    fitted = fit_all(models, periods.train)
    scores = score_all(fitted, periods.validate)
    table = metrics_table(periods.validate.label.to_numpy(), scores,
                          periods.validate[TIMESTAMP].to_numpy(), capacity)
    selection = select(table, select_by)
    winner = table.set_index("model").loc[selection.winner]
    table.insert(1, "selected", table.model == selection.winner)
    for metric in ("pr_auc", "roc_auc", "precision_at_capacity"):
        table[f"{metric}_minus_winner"] = table[metric] - winner[metric]
    return fitted, scores, table, selection


def ablation_table(winner: str, features: list[str], periods: Periods, random_state: int,
                   all_auc: float, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """The winning kind of model refitted without each feature group: validation ROC AUC."""
    y_val = periods.validate.label.to_numpy()
    rows = [{"features": "all", "roc_auc": all_auc}]
    for name, dropped in ablations(spec).items():
        kept = [f for f in features if f not in dropped]
        model = {c.name: c for c in candidates(kept, random_state)}.get(winner)
        if model is None:  # the winner needs a feature this group removes
            rows.append({"features": name, "roc_auc": float("nan")})
            continue
        p = model.fit(periods.train).predict_proba(periods.validate)[:, 1]
        rows.append({"features": name, "roc_auc": evaluate.metrics(y_val, p)["roc_auc"]})
    ablation = pd.DataFrame(rows)
    ablation["auc_change"] = ablation.roc_auc - ablation.roc_auc.iloc[0]
    return ablation


def importance_table(model: Pipeline, features: list[str], validate: pd.DataFrame,
                     config: TrainConfig) -> pd.DataFrame:
    """Permutation importance (ROC AUC drop) on up to 20,000 validation rows."""
    sample = validate.sample(min(len(validate), 20_000), random_state=config.random_state)
    result = permutation_importance(model, sample, sample.label, scoring="roc_auc",
                                    n_repeats=config.importance_repeats,
                                    random_state=config.random_state)
    importance = pd.DataFrame({"feature": list(sample.columns),
                               "mean_auc_drop": result.importances_mean,
                               "std_auc_drop": result.importances_std})
    return importance[importance.feature.isin(features)].sort_values(
        "mean_auc_drop", ascending=False, ignore_index=True)


def backtest_summary(per_fold: pd.DataFrame | None, folds: int, winner: str) -> dict:
    """For the metadata: per candidate and metric, mean/std/min/max over the folds; and per
    other candidate, its fold-by-fold difference from the winner (``versus_winner``)."""
    if per_fold is None:
        return {}
    out: dict = {"folds": folds, "candidates": {}, "versus_winner": {}}
    for row in spread(per_fold).itertuples():
        out["candidates"].setdefault(row.model, {})[row.metric] = {
            "mean": float(row.mean), "std": float(row.std), "min": float(row.min),
            "max": float(row.max)}
    for row in paired_differences(per_fold, winner).itertuples():
        out["versus_winner"].setdefault(row.model, {})[row.metric] = {
            "mean": float(row.mean), "std": float(row.std), "min": float(row.min),
            "max": float(row.max), "folds_higher": int(row.folds_higher)}
    return out


def model_metadata(config: TrainConfig, features: list[str], periods: Periods,
                   table: pd.DataFrame, selection: Selection,
                   backtest: pd.DataFrame | None) -> ModelMetadata:
    """The shipped model's metadata; ``metrics["model"]`` are the winner's validation metrics."""
    metrics = {row.model: {k: float(getattr(row, k)) for k in table.columns
                           if k not in ("model", "selected") and not k.endswith("_minus_winner")}
               for row in table.itertuples()}
    frame, train_rows, validate = periods.rows, periods.train, periods.validate
    vocabulary = load_vocabulary(config.repo)
    return ModelMetadata(
        feature_service=SERVICE_NAME, features=features, horizon_days=config.horizon_days,
        interval_days=config.interval_days,
        train_window={"train_start": str(train_rows.event_timestamp.min()),
                      "train_end": str(train_rows.event_timestamp.max()),
                      "validation_start": str(periods.split),
                      "validation_end": str(validate.event_timestamp.max()),
                      "refit_start": str(frame.event_timestamp.min()),
                      "refit_end": str(frame.event_timestamp.max())},
        metrics={"model": metrics[selection.winner], **metrics},
        training_data_sha256=training_data_hash(frame[["customer_id", "event_timestamp", "label",
                                                       *features]]),
        versions=installed_versions(), created_at=datetime.now(UTC).isoformat(),
        selection={**selection.as_dict(), "refit_rows": len(frame),
                   "capacity": str(config.capacity)},
        backtest=backtest_summary(backtest, config.backtest, selection.winner),
        reference_values=reference_values(frame, features),
        vocabulary=vocabulary.to_dict(), vocabulary_sha256=vocabulary.sha256,
        event_names=EventLog(RepoPaths(config.repo)).event_names(
            last=frame.event_timestamp.max().date()))

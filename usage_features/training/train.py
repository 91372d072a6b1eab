"""The training job: labels -> Feast historical features -> time split -> candidates compared
on the validation period -> the best refitted on every labelled row -> saved, with a report.

Features come only from ``get_historical_features`` through ``churn_model_v1`` (via
:func:`usage_features.features.retrieval.historical_features`); nothing here computes one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from usage_features.config import RepoPaths
from usage_features.domain.capacity import DEFAULT_CAPACITY, Capacity
from usage_features.features.spec import SIGNUP_AT, TENURE_DAYS, FeatureSpec
from usage_features.training import DEFAULT_MAX_ROWS, evaluate
from usage_features.training.backtest import run_backtest
from usage_features.training.estimators import CALIBRATION_FOLDS
from usage_features.training.horizons import fit_horizons
from usage_features.training.labels import LabelError, time_split
from usage_features.training.metadata import horizons_version_sha256, training_data_hash
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import save_model
from usage_features.training.report import REFERENCE_FILE, Report, write_report
from usage_features.training.selection import Candidate, Selection, candidates
from usage_features.training.steps import (
    ABLATED_GROUPS,
    ABLATIONS,
    ablation_table,
    compare_candidates,
    importance_table,
    model_metadata,
)


@dataclass
class TrainConfig:
    repo: Path
    customers: Path | None = None
    horizon_days: int = 30
    interval_days: int = 7
    train_end: datetime | None = None
    model_out: Path | None = None
    validation_share: float = 0.25
    random_state: int = 0
    importance_repeats: int = 3
    #: Rolling-origin backtest folds (0: none).
    backtest: int = 0
    #: Customers a team contacts per scoring date (precision at capacity); None: the repo's
    #: ``capacity:`` setting (5 % by default).
    capacity: Capacity | None = None
    #: What the shipped model is chosen by: ``pr_auc`` or ``precision_at_capacity``.
    select_by: str = "pr_auc"
    #: The longer horizons in days (each longer than ``horizon_days``) the model also gives
    #: churn probabilities for (:mod:`usage_features.training.horizons`); None: the repo's
    #: ``horizons:`` setting (60 and 90 days by default); empty: none.
    horizons: tuple[int, ...] | None = None
    #: Observation rows beyond which a sample of whole customers is trained on (at least this
    #: many rows; 0: every row): :func:`~usage_features.training.labels.sample_customers`.
    max_rows: int = DEFAULT_MAX_ROWS


@dataclass
class SurvivalData:
    """Every observation row before the end of the data, with its features, time to churn
    (``duration_days``) and whether it churned (``churned``; else censored at ``cutoff``):
    what the horizons are fitted on (:func:`~usage_features.training.labels.survival_rows`)."""

    rows: pd.DataFrame
    cutoff: pd.Timestamp


def check_horizons(horizons, horizon_days: int) -> tuple[int, ...]:
    """The horizons, ascending; refused unless whole days longer than ``horizon_days``."""
    out = tuple(sorted(set(horizons)))
    bad = [h for h in out if not isinstance(h, int) or isinstance(h, bool) or h <= horizon_days]
    if bad:
        raise LabelError(f"horizons {bad}: each must be a whole number of days longer than the "
                         f"classifier's horizon ({horizon_days} days), whose probability is "
                         "churn_probability")
    return out


@dataclass
class TrainResult:
    model: TrainedModel
    model_path: Path
    report_dir: Path
    metrics: pd.DataFrame
    ablation: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    selection: Selection | None = None
    #: ``--backtest``: one row per fold and candidate (None without it)
    backtest: pd.DataFrame | None = None
    #: one row per horizon and model (survival, the horizon's classifier); None without
    horizons: pd.DataFrame | None = None

    @property
    def leakage_alarm(self) -> bool:
        return self.model.metadata.metrics["model"]["roc_auc"] > evaluate.LEAKAGE_ALARM_AUC


class HorizonWarning(UserWarning):
    """A longer horizon the data cannot test: no probability is given for it."""


class FeatureDataWarning(UserWarning):
    """A served feature the training rows cannot teach the model anything about."""


class FeatureDataError(LabelError):
    """A served feature cannot be learned from: entirely null or constant in training."""


def check_features(rows: pd.DataFrame, features: list[str]) -> None:
    """Before fitting: refuse features entirely null in ``rows`` (the pipeline cannot fit them),
    and warn, naming them, of constant ones (the model cannot learn from them: e.g.
    ``is_first_90_days`` while every customer is younger than 90 days)."""
    null = [f for f in features if rows[f].isna().all()]
    constant = {f: rows[f].dropna().iloc[0] for f in features
                if f not in null and rows[f].nunique(dropna=False) == 1}
    if constant:
        warnings.warn(FeatureDataWarning(
            f"served feature(s) constant in the {len(rows):,} training rows: "
            + ", ".join(f"{f} (always {v})" for f, v in constant.items())
            + "; the model cannot learn from them until the data varies"), stacklevel=2)
    if null:
        hint = (f" ({TENURE_DAYS} comes from the customers table's {SIGNUP_AT}: load it with "
                "`usage-features load-customers FILE` then `usage-features build`, or pass "
                "`train --customers FILE`)" if TENURE_DAYS in null else "")
        raise FeatureDataError(
            f"cannot train on {len(rows):,} training rows: served feature(s) entirely null: "
            f"{', '.join(null)}{hint}. Check the input data")


@dataclass
class Periods:
    """Every labelled row, and its split by time into training and validation rows."""

    rows: pd.DataFrame
    train: pd.DataFrame
    validate: pd.DataFrame
    split: pd.Timestamp

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "train_positives": int(self.train.label.sum()),
                "validation": len(self.validate),
                "validation_positives": int(self.validate.label.sum())}


def split_periods(frame: pd.DataFrame, features: list[str], config: TrainConfig) -> Periods:
    """The time split, refusing features nothing can be learned from and one-class periods."""
    train_rows, validate, split = time_split(frame, config.horizon_days, config.validation_share)
    check_features(train_rows, features)
    for period, rows in (("training", train_rows), ("validation", validate)):
        y = rows.label.to_numpy()
        if len(np.unique(y)) < 2:
            only = "churners" if len(y) and y.all() else "non-churners"
            raise LabelError(f"the {period} period has only {only} ({len(y):,} rows): "
                             "labels need both classes")
    y = train_rows.label.to_numpy()
    churners = int(y.sum())
    fewest, which = min((churners, "churners"), (len(y) - churners, "non-churners"))
    if fewest < CALIBRATION_FOLDS:
        raise LabelError(f"the training period has only {fewest} rows of {which} "
                         f"({len(y):,} rows in all): "
                         f"the models are calibrated on {CALIBRATION_FOLDS} folds, which needs "
                         f"at least {CALIBRATION_FOLDS} rows of each class; train on more "
                         "history or more customers")
    return Periods(frame, train_rows, validate, split)


def backtest_candidates(models: list[Candidate], periods: Periods, config: TrainConfig,
                        progress: Callable[[str], None]) -> pd.DataFrame | None:
    """``--backtest K``: every candidate on K rolling-origin folds (None without it)."""
    if not config.backtest:
        return None
    progress(f"backtest: {config.backtest} rolling-origin folds")
    return run_backtest(periods.rows, models, config.horizon_days, config.backtest,
                        config.validation_share, config.capacity)


def fit_candidates(config: TrainConfig, frame: pd.DataFrame, features: list[str],
                   spec: FeatureSpec, progress: Callable[[str], None] = lambda _: None,
                   survival: SurvivalData | None = None, sample: dict | None = None,
                   incomplete_history: dict | None = None) -> TrainResult:
    """Labelled rows with their features -> candidates compared on validation -> the best,
    refitted on every labelled row -> saved, with its report. With ``survival`` and
    ``config.horizons``, the longer horizons too (:func:`fit_horizons`); ``sample`` and
    ``incomplete_history``: how the rows were sampled and which were left out (recorded in the
    metadata)."""
    horizons = check_horizons(config.horizons or (), config.horizon_days)
    paths = RepoPaths(config.repo)
    config = replace(config, capacity=config.capacity or DEFAULT_CAPACITY)
    periods = split_periods(frame, features, config)
    models = candidates(features, config.random_state)

    progress(f"fitting {len(models)} candidates on {len(periods.train):,} rows")
    fitted, scores, table, selection = compare_candidates(models, periods, config.capacity,
                                                          config.select_by)
    progress(f"selected {selection.sentence()}")

    progress("ablation: refitting without each feature group")
    ablation = ablation_table(selection.winner, features, periods, config.random_state,
                              float(table.set_index("model").roc_auc[selection.winner]), spec)
    progress("permutation importance on the validation period")
    importance = importance_table(fitted[selection.winner], features, periods.validate, config)

    backtest = backtest_candidates(models, periods, config, progress)

    progress(f"refitting {selection.winner} on all {len(periods.rows):,} labelled rows")
    winner = {m.name: m for m in models}[selection.winner]
    shipped = winner.fit(periods.rows)
    metadata = model_metadata(config, features, periods, table, selection, backtest)
    metadata.sample = dict(sample or {})
    metadata.incomplete_history = dict(incomplete_history or {})
    by_horizon = None
    if survival is not None and horizons:
        found = fit_horizons(survival.rows, features, horizons, survival.cutoff, winner.build,
                             selection.winner, config.validation_share, config.capacity,
                             config.select_by, progress)
        for horizon, why in found.summary["skipped"].items():
            warnings.warn(f"no {horizon}-day churn probability: {why}", HorizonWarning,
                          stacklevel=2)
        metadata.horizons = {**found.summary, "survival_rows": len(survival.rows),
                             "survival_churns": int(survival.rows.churned.sum()),
                             "cutoff": str(survival.cutoff),
                             "survival_data_sha256": training_data_hash(survival.rows[
                                 ["customer_id", "event_timestamp", "duration_days", "churned",
                                  *features]])}
        metadata.version_sha256 = horizons_version_sha256(metadata.training_data_sha256,
                                                          metadata.horizons)
        by_horizon, horizon_model = found.table, found.model
    else:
        horizon_model = None
    trained = TrainedModel(shipped, metadata, horizon_model)
    model_path = save_model(trained, config.model_out or paths.model)

    progress("writing the report")
    counts = periods.counts()
    report = Report(metadata, periods.validate.label.to_numpy(), scores, table, ablation,
                    importance, counts, selection, backtest, by_horizon)
    report_dir = write_report(report, periods.validate, paths.reports / metadata.model_version)
    return TrainResult(trained, model_path, report_dir, table, ablation, counts, selection,
                       backtest, by_horizon)


__all__ = ["ABLATED_GROUPS", "ABLATIONS", "REFERENCE_FILE", "FeatureDataError",
           "FeatureDataWarning", "HorizonWarning", "SurvivalData", "TrainConfig", "TrainResult",
           "check_features", "check_horizons", "fit_candidates"]

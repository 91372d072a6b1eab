"""The training job: labels -> Feast historical features -> time split -> fit -> evaluate -> save.

Features come only from ``get_historical_features`` through ``churn_model_v1`` (via
:func:`usage_features.features.retrieval.historical_features`); nothing here computes one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from usage_features.adapters.duckdb_connection import connect, parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.features.retrieval import (
    TIMESTAMP,
    historical_features,
    served_feature_names,
)
from usage_features.features.store import SERVICE_NAME, open_store
from usage_features.training import evaluate
from usage_features.training.labels import LabelError, observation_rows, time_split
from usage_features.training.metadata import (
    ModelMetadata,
    installed_versions,
    training_data_hash,
)
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import save_model
from usage_features.training.report import REFERENCE_FILE, Report, write_report
from usage_features.training.selection import (
    Candidate,
    Selection,
    candidates,
    fit_all,
    metrics_table,
    score_all,
    select,
)

#: Feature groups removed in the ablation, to measure the domain's claims.
ABLATIONS: dict[str, tuple[str, ...]] = {
    "without decay features": ("decay_ratio_7d_30d", "decay_ratio_30d_prev30d",
                               "event_count_prev30d", "low_adoption_early_life"),
    "without adoption features": ("adoption_score_latest", "adoption_score_mean_30d",
                                  "adoption_score_change_30d", "low_adoption_early_life"),
    "without integration/monitoring": ("integration_connect_count_30d",
                                       "integration_connect_count_90d",
                                       "monitoring_run_count_30d",
                                       "days_since_last_monitoring_run"),
}


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

    @property
    def leakage_alarm(self) -> bool:
        return self.model.metadata.metrics["model"]["roc_auc"] > evaluate.LEAKAGE_ALARM_AUC


def load_labels_source(config: TrainConfig) -> pd.DataFrame:
    from usage_features.ingestion.customers import read_customers
    from usage_features.ingestion.settings import load_settings

    path = config.customers or RepoPaths(config.repo).customers
    if not Path(path).exists():
        raise FileNotFoundError(f"no customers table at {path}; pass --customers FILE or run "
                                "`usage-features load-customers` first")
    if config.customers is None:  # the repo's own table, already in the table's columns
        return read_customers(Path(path)).to_pandas()
    # a user's file: read as load-customers reads it (the repo's stored mapping and limits)
    settings = load_settings(Path(config.repo))
    return read_customers(Path(path), settings.customer_columns, settings.limits).to_pandas()


def adopt_customers(config: TrainConfig) -> int | None:
    """``--customers FILE``: make FILE the repo's customers table (as ``load-customers``) and
    rebuild the customer profile from it (as ``build``), so the features (tenure) and the labels
    come from the same table. Returns its row count (None without ``--customers``)."""
    from usage_features.features.build import build_features
    from usage_features.ingestion.customers import load_customers

    if config.customers is None:
        return None
    paths = RepoPaths(config.repo)
    rows = None
    if Path(config.customers).resolve() != paths.customers:
        rows = load_customers(Path(config.customers), paths)
    build_features(paths)  # refreshes the profile table when the customers table changed
    return rows


def data_end(paths: RepoPaths) -> datetime:
    """The end of observed data: the latest event's timestamp."""
    log = EventLog(paths)
    with log.snapshot() as files:
        if not files:
            raise FileNotFoundError(f"no events in {log.root}; ingest and build first")
        (latest,) = connect().execute(
            f"SELECT max(timestamp) FROM read_parquet({parquet_list(files)}, "
            "hive_partitioning = false)"
        ).fetchall()[0]
    return latest


def training_frame(config: TrainConfig, progress: Callable[[str], None] = lambda _: None
                   ) -> pd.DataFrame:
    """Labelled observation rows with their point-in-time features from Feast.

    With ``config.customers`` the file is validated and labelled first, and only then made
    the repo's customers table (:func:`adopt_customers`): a file that cannot give labels
    leaves the repo as it was.
    """
    customers = load_labels_source(config)
    cutoff = data_end(RepoPaths(config.repo))
    if config.train_end is not None:
        cutoff = min(cutoff, config.train_end)
    grid_start = customers.signup_at.min().floor("D")
    progress("labelling observation rows")
    rows = observation_rows(customers, grid_start, cutoff, config.horizon_days,
                            config.interval_days)
    if rows.label.nunique() < 2:
        only = "churners" if rows.label.all() else "non-churners"
        raise LabelError(f"the customers table gives only {only} ({len(rows):,} rows): "
                         "labels need both classes")
    if config.customers is not None:
        progress(f"loading {config.customers} as the repo's customers table; rebuilding the "
                 "customer profile")
        adopt_customers(config)
    progress(f"fetching historical features for {len(rows):,} rows from Feast")
    return historical_features(open_store(config.repo), rows)


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
        hint = (" (tenure_days comes from the customers table's signup_at: load it with "
                "`usage-features load-customers FILE` then `usage-features build`, or pass "
                "`train --customers FILE`)" if "tenure_days" in null else "")
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
    return Periods(frame, train_rows, validate, split)


def compare_candidates(models: list[Candidate], periods: Periods
                       ) -> tuple[dict[str, Pipeline], dict[str, np.ndarray], pd.DataFrame,
                                  Selection]:
    """Fit every candidate on the training rows, score the validation rows, pick the best."""
    fitted = fit_all(models, periods.train)
    scores = score_all(fitted, periods.validate)
    table = metrics_table(periods.validate.label.to_numpy(), scores)
    selection = select(table)
    winner = table.set_index("model").loc[selection.winner]
    table.insert(1, "selected", table.model == selection.winner)
    for metric in ("pr_auc", "roc_auc"):
        table[f"{metric}_minus_winner"] = table[metric] - winner[metric]
    return fitted, scores, table, selection


def ablation_table(winner: str, features: list[str], periods: Periods, random_state: int,
                   all_auc: float) -> pd.DataFrame:
    """The winning kind of model refitted without each feature group: validation ROC AUC."""
    y_val = periods.validate.label.to_numpy()
    rows = [{"features": "all", "roc_auc": all_auc}]
    for name, dropped in ABLATIONS.items():
        kept = [f for f in features if f not in dropped]
        model = {c.name: c for c in candidates(kept, random_state)}[winner]
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


def backtest_summary(per_fold: pd.DataFrame | None, folds: int) -> dict:
    """For the metadata: per candidate and metric, mean/std/min/max over the folds."""
    if per_fold is None:
        return {}
    from usage_features.training.backtest import spread

    out: dict = {"folds": folds, "candidates": {}}
    for row in spread(per_fold).itertuples():
        out["candidates"].setdefault(row.model, {})[row.metric] = {
            "mean": float(row.mean), "std": float(row.std), "min": float(row.min),
            "max": float(row.max)}
    return out


def model_metadata(config: TrainConfig, features: list[str], periods: Periods,
                   table: pd.DataFrame, selection: Selection,
                   backtest: pd.DataFrame | None) -> ModelMetadata:
    """The shipped model's metadata; ``metrics["model"]`` are the winner's validation metrics."""
    metrics = {row.model: {k: float(getattr(row, k)) for k in table.columns
                           if k not in ("model", "selected") and not k.endswith("_minus_winner")}
               for row in table.itertuples()}
    frame, train_rows, validate = periods.rows, periods.train, periods.validate
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
        versions=installed_versions(), created_at=datetime.now(timezone.utc).isoformat(),
        selection={**selection.as_dict(), "refit_rows": len(frame)},
        backtest=backtest_summary(backtest, config.backtest))


def train(config: TrainConfig, progress: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Labels and features -> candidates compared on validation -> the best, refitted on every
    labelled row -> saved, with its report."""
    paths = RepoPaths(config.repo)
    features = served_feature_names()
    periods = split_periods(training_frame(config, progress), features, config)
    models = candidates(features, config.random_state)

    progress(f"fitting {len(models)} candidates on {len(periods.train):,} rows")
    fitted, scores, table, selection = compare_candidates(models, periods)
    progress(f"selected {selection.sentence()}")

    progress("ablation: refitting without each feature group")
    ablation = ablation_table(selection.winner, features, periods, config.random_state,
                              float(table.set_index("model").roc_auc[selection.winner]))
    progress("permutation importance on the validation period")
    importance = importance_table(fitted[selection.winner], features, periods.validate, config)

    backtest = None
    if config.backtest:
        from usage_features.training.backtest import run_backtest

        progress(f"backtest: {config.backtest} rolling-origin folds")
        backtest = run_backtest(periods.rows, models, config.horizon_days, config.backtest,
                                config.validation_share)

    progress(f"refitting {selection.winner} on all {len(periods.rows):,} labelled rows")
    shipped = {m.name: m for m in models}[selection.winner].fit(periods.rows)
    metadata = model_metadata(config, features, periods, table, selection, backtest)
    trained = TrainedModel(shipped, metadata)
    model_path = save_model(trained, config.model_out or paths.model)

    progress("writing the report")
    counts = {"train": len(periods.train), "train_positives": int(periods.train.label.sum()),
              "validation": len(periods.validate),
              "validation_positives": int(periods.validate.label.sum())}
    report = Report(metadata, periods.validate.label.to_numpy(), scores, table, ablation,
                    importance, counts, selection, backtest)
    report_dir = write_report(report, periods.validate, paths.reports / metadata.model_version)
    return TrainResult(trained, model_path, report_dir, table, ablation, counts, selection,
                       backtest)


def predict(repo: Path, entities: pd.DataFrame, model_path: Path | None = None) -> pd.DataFrame:
    """Batch scoring of ``entities`` rows (customer_id, event_timestamp, ...), kept in order.

    Adds ``status`` (``active``, ``churned``, ``unknown``; see
    :mod:`usage_features.serving.status`), ``churn_probability`` (null unless active) and
    ``beyond_data`` (the row's time is after the latest ingested event: its features assume no
    activity since). ``event_timestamp`` must be timezone-aware (read files with
    :func:`usage_features.serving.entities.read_entities`).
    """
    from usage_features.serving.freshness import latest_event_at
    from usage_features.serving.status import ACTIVE, ChurnDates, statuses
    from usage_features.training.persistence import load_model

    times = entities[TIMESTAMP] if TIMESTAMP in entities else None
    if times is None or not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise ValueError("entity rows need a timezone-aware event_timestamp column "
                         "(naive times are ambiguous)")
    paths = RepoPaths(repo)
    model = load_model(model_path or paths.model, served_feature_names())
    frame = historical_features(open_store(repo), entities)
    moments = (times.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    ids = entities["customer_id"].astype(str).tolist()
    status = statuses(frame.days_since_last_event.to_numpy(dtype=float),
                      frame.tenure_days.to_numpy(dtype=float),
                      ChurnDates(paths.customers).seconds(ids), moments.to_numpy(dtype=float))
    # NaN (null in Parquet, empty in CSV) for a customer not scored
    probability = np.where(status == ACTIVE, model.predict_proba(frame).to_numpy(), np.nan)
    latest = latest_event_at(paths)
    out = entities.copy()
    out["status"] = status.astype(str)
    out["churn_probability"] = probability
    out["beyond_data"] = pd.array((times > latest).to_numpy() if latest is not None
                                  else [True] * len(out), dtype="boolean")
    return out


__all__ = ["ABLATIONS", "REFERENCE_FILE", "FeatureDataError", "FeatureDataWarning", "TrainConfig",
           "TrainResult",
           "adopt_customers", "check_features", "predict", "train", "training_frame"]

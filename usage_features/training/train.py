"""The training job: labels -> Feast historical features -> time split -> candidates compared
on the validation period -> the best refitted on every labelled row -> saved, with a report.

Features come only from ``get_historical_features`` through ``churn_model_v1`` (via
:func:`usage_features.features.retrieval.historical_features`); nothing here computes one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from usage_features.adapters.duckdb_connection import connect, parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.domain.status import ACTIVE
from usage_features.features.retrieval import (
    TIMESTAMP,
    historical_features,
    served_feature_names,
)
from usage_features.features.spec import (
    DAYS_SINCE_LAST_EVENT,
    SIGNUP_AT,
    TENURE_DAYS,
    feature_spec,
)
from usage_features.features.store import open_store
from usage_features.ingestion.settings import load_vocabulary
from usage_features.training import evaluate
from usage_features.training.labels import LabelError, observation_rows, time_split
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
    return Periods(frame, train_rows, validate, split)


def backtest_candidates(models: list[Candidate], periods: Periods, config: TrainConfig,
                        progress: Callable[[str], None]) -> pd.DataFrame | None:
    """``--backtest K``: every candidate on K rolling-origin folds (None without it)."""
    if not config.backtest:
        return None
    from usage_features.training.backtest import run_backtest

    progress(f"backtest: {config.backtest} rolling-origin folds")
    return run_backtest(periods.rows, models, config.horizon_days, config.backtest,
                        config.validation_share)


def train(config: TrainConfig, progress: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Labels and features -> candidates compared on validation -> the best, refitted on every
    labelled row -> saved, with its report."""
    paths = RepoPaths(config.repo)
    features = served_feature_names(paths.repo)
    periods = split_periods(training_frame(config, progress), features, config)
    models = candidates(features, config.random_state)

    progress(f"fitting {len(models)} candidates on {len(periods.train):,} rows")
    fitted, scores, table, selection = compare_candidates(models, periods)
    progress(f"selected {selection.sentence()}")

    progress("ablation: refitting without each feature group")
    ablation = ablation_table(selection.winner, features, periods, config.random_state,
                              float(table.set_index("model").roc_auc[selection.winner]),
                              feature_spec(load_vocabulary(paths.repo)))
    progress("permutation importance on the validation period")
    importance = importance_table(fitted[selection.winner], features, periods.validate, config)

    backtest = backtest_candidates(models, periods, config, progress)

    progress(f"refitting {selection.winner} on all {len(periods.rows):,} labelled rows")
    shipped = {m.name: m for m in models}[selection.winner].fit(periods.rows)
    metadata = model_metadata(config, features, periods, table, selection, backtest)
    trained = TrainedModel(shipped, metadata)
    model_path = save_model(trained, config.model_out or paths.model)

    progress("writing the report")
    counts = periods.counts()
    report = Report(metadata, periods.validate.label.to_numpy(), scores, table, ablation,
                    importance, counts, selection, backtest)
    report_dir = write_report(report, periods.validate, paths.reports / metadata.model_version)
    return TrainResult(trained, model_path, report_dir, table, ablation, counts, selection,
                       backtest)


def predict(repo: Path, entities: pd.DataFrame, model_path: Path | None = None) -> pd.DataFrame:
    """Batch scoring of ``entities`` rows (customer_id, event_timestamp, ...), kept in order.

    Adds ``status`` (``active``, ``churned``, ``unknown``; see
    :mod:`usage_features.domain.status`), ``churn_probability`` (null unless active) and
    ``beyond_data`` (the row's time is after the latest ingested event: its features assume no
    activity since). ``event_timestamp`` must be timezone-aware (read files with
    :func:`usage_features.serving.entities.read_entities`).
    """
    from usage_features.adapters.customers_table import ChurnDates
    from usage_features.features.request_time import statuses
    from usage_features.training.persistence import load_model

    times = entities[TIMESTAMP] if TIMESTAMP in entities else None
    if times is None or not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise ValueError("entity rows need a timezone-aware event_timestamp column "
                         "(naive times are ambiguous)")
    paths = RepoPaths(repo)
    model = load_model(model_path or paths.model, repo=paths.repo)
    frame = historical_features(open_store(repo), entities)
    moments = (times.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    ids = entities["customer_id"].astype(str).tolist()
    status = statuses(frame[DAYS_SINCE_LAST_EVENT].to_numpy(dtype=float),
                      frame[TENURE_DAYS].to_numpy(dtype=float),
                      ChurnDates(paths.customers).seconds(ids), moments.to_numpy(dtype=float))
    # NaN (null in Parquet, empty in CSV) for a customer not scored
    probability = np.where(status == ACTIVE, model.predict_proba(frame).to_numpy(), np.nan)
    latest = EventLog(paths).latest_event_at()
    out = entities.copy()
    out["status"] = status.astype(str)
    out["churn_probability"] = probability
    out["beyond_data"] = pd.array((times > latest).to_numpy() if latest is not None
                                  else [True] * len(out), dtype="boolean")
    return out


__all__ = ["ABLATED_GROUPS", "ABLATIONS", "REFERENCE_FILE", "FeatureDataError", "FeatureDataWarning", "TrainConfig",
           "TrainResult",
           "adopt_customers", "check_features", "predict", "train", "training_frame"]

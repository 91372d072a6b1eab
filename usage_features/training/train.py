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

from usage_features.adapters.duckdb_connection import connect, parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.features.retrieval import (
    TIMESTAMP,
    historical_features,
    served_feature_names,
)
from usage_features.features.spec import Group, feature_groups
from usage_features.features.store import SERVICE_NAME, open_store
from usage_features.training import evaluate
from usage_features.training.labels import LabelError, observation_rows, time_split
from usage_features.training.estimators import churn_classifier, logistic_baseline
from usage_features.training.metadata import (
    ModelMetadata,
    installed_versions,
    training_data_hash,
)
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import save_model
from usage_features.training.reference_values import reference_values

#: The validation period's rows, features and model scores, in the model's report folder.
REFERENCE_FILE = "validation_reference.parquet"

#: The feature groups whose worth the ablation measures: the domain's claims (usage decay, low
#: adoption, no integrations or monitoring runs). Each refit costs a model fit, so not every
#: group is refit without.
ABLATED_GROUPS = (Group.DECAY, Group.ADOPTION, Group.INTEGRATION_MONITORING)
#: One refit without each ablated group's served features, as the spec groups them (a renamed
#: or added feature is dropped with its group).
ABLATIONS: dict[str, tuple[str, ...]] = {
    f"without {group} features": tuple(feature_groups()[group]) for group in ABLATED_GROUPS}


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


@dataclass
class TrainResult:
    model: TrainedModel
    model_path: Path
    report_dir: Path
    metrics: pd.DataFrame
    ablation: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

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


def train(config: TrainConfig, progress: Callable[[str], None] = lambda _: None) -> TrainResult:
    paths = RepoPaths(config.repo)
    frame = training_frame(config, progress)
    features = served_feature_names()
    train_rows, validate, split = time_split(frame, config.horizon_days, config.validation_share)
    check_features(train_rows, features)
    y_train, y_val = train_rows.label.to_numpy(), validate.label.to_numpy()
    for period, y in (("training", y_train), ("validation", y_val)):
        if len(np.unique(y)) < 2:
            only = "churners" if len(y) and y.all() else "non-churners"
            raise LabelError(f"the {period} period has only {only} ({len(y):,} rows): "
                             "labels need both classes")

    progress(f"fitting the model and baselines on {len(train_rows):,} rows")
    candidates = {
        "model": churn_classifier(features, config.random_state),
        "baseline: event_count_30d": logistic_baseline(["event_count_30d"]),
        "baseline: logistic regression": logistic_baseline(features),
    }
    scores = {name: pipe.fit(train_rows, y_train).predict_proba(validate)[:, 1]
              for name, pipe in candidates.items()}
    table = pd.DataFrame([{"model": n, **evaluate.metrics(y_val, p)} for n, p in scores.items()])

    progress("ablation: refitting without each feature group")
    ablation = [{"features": "all", "roc_auc": table.roc_auc.iloc[0]}]
    for name, dropped in ABLATIONS.items():
        kept = [f for f in features if f not in dropped]
        p = churn_classifier(kept, config.random_state).fit(train_rows, y_train)
        ablation.append({"features": name, "roc_auc": evaluate.metrics(
            y_val, p.predict_proba(validate)[:, 1])["roc_auc"]})
    ablation = pd.DataFrame(ablation)
    ablation["auc_change"] = ablation.roc_auc - ablation.roc_auc.iloc[0]

    progress("permutation importance on the validation period")
    model = candidates["model"]
    sample = validate.sample(min(len(validate), 20_000), random_state=config.random_state)
    result = permutation_importance(model, sample, sample.label, scoring="roc_auc",
                                    n_repeats=config.importance_repeats,
                                    random_state=config.random_state)
    importance = pd.DataFrame({"feature": list(sample.columns),
                               "mean_auc_drop": result.importances_mean,
                               "std_auc_drop": result.importances_std})
    importance = importance[importance.feature.isin(features)].sort_values(
        "mean_auc_drop", ascending=False, ignore_index=True)

    metadata = ModelMetadata(
        feature_service=SERVICE_NAME, features=features, horizon_days=config.horizon_days,
        interval_days=config.interval_days,
        train_window={"train_start": str(train_rows.event_timestamp.min()),
                      "train_end": str(train_rows.event_timestamp.max()),
                      "validation_start": str(split),
                      "validation_end": str(validate.event_timestamp.max())},
        metrics={row.model: {k: float(getattr(row, k)) for k in table.columns if k != "model"}
                 for row in table.itertuples()},
        training_data_sha256=training_data_hash(frame[["customer_id", "event_timestamp", "label",
                                                       *features]]),
        versions=installed_versions(), created_at=datetime.now(timezone.utc).isoformat(),
        reference_values=reference_values(train_rows, features))
    trained = TrainedModel(model, metadata)
    model_path = save_model(trained, config.model_out or paths.model)

    progress("writing the report")
    report_dir = paths.reports / metadata.model_version
    evaluate.plot_curves(y_val, scores, report_dir)
    evaluate.plot_importance(importance, report_dir)
    # what `usage-features monitor` compares today's features and scores with
    validate[["customer_id", "event_timestamp", *features]].assign(
        churn_probability=scores["model"]).to_parquet(report_dir / REFERENCE_FILE, index=False)
    importance.to_csv(report_dir / "permutation_importance.csv", index=False)
    table.to_csv(report_dir / "metrics.csv", index=False)
    counts = {"train": len(train_rows), "train_positives": int(y_train.sum()),
              "validation": len(validate), "validation_positives": int(y_val.sum())}
    (report_dir / "summary.md").write_text(
        evaluate.summary_markdown(metadata, table, ablation, importance, counts))
    return TrainResult(trained, model_path, report_dir, table, ablation, counts)


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

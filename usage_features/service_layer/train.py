"""Train the churn model: labels from the customers table, point-in-time features from Feast
(``churn_model_v1``), candidates compared and the best shipped (:mod:`usage_features.training`).

With a customers file, the file is validated and labelled first, and only then made the repo's
customers table and the profile rebuilt (:func:`adopt_customers`): a file that cannot give
labels leaves the repo as it was, and the features (tenure) and labels come from one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from usage_features.adapters.duckdb_connection import connect, parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.adapters.stored_files import stored_files
from usage_features.config import RepoPaths
from usage_features.features.retrieval import historical_features, served_feature_names
from usage_features.features.spec import LONGEST_WINDOW_DAYS, SIGNUP_AT, feature_spec
from usage_features.features.store import open_store
from usage_features.ingestion.customers import read_customers
from usage_features.ingestion.settings import load_settings, load_vocabulary
from usage_features.service_layer.build import build
from usage_features.service_layer.load_customers import load_customers
from usage_features.serving.freshness import history_start
from usage_features.training.labels import (
    LabelError,
    complete_rows,
    observation_rows,
    sample_customers,
    survival_rows,
)
from usage_features.training.train import (
    SurvivalData,
    TrainConfig,
    TrainResult,
    check_horizons,
    fit_candidates,
)


@stored_files
def train(config: TrainConfig, progress: Callable[[str], None] = lambda _: None) -> TrainResult:
    """Labels and features -> candidates compared on validation -> the best, refitted on every
    labelled row -> saved, with its report."""
    repo = RepoPaths(config.repo).repo
    if config.capacity is None:
        config = replace(config, capacity=load_settings(repo).capacity)
    if config.horizons is None:
        config = replace(config, horizons=load_settings(repo).horizons)
    check_horizons(config.horizons, config.horizon_days)  # before any work
    frame, survival, sample, incomplete = training_data(config, progress)
    return fit_candidates(config, frame, served_feature_names(repo),
                          feature_spec(load_vocabulary(repo)), progress, survival, sample,
                          incomplete)


def training_frame(config: TrainConfig, progress: Callable[[str], None] = lambda _: None
                   ) -> pd.DataFrame:
    """Labelled observation rows with their point-in-time features from Feast."""
    return training_data(replace(config, horizons=()), progress)[0]


def training_data(config: TrainConfig, progress: Callable[[str], None] = lambda _: None
                  ) -> tuple[pd.DataFrame, SurvivalData | None, dict, dict]:
    """Labelled observation rows with their point-in-time features from Feast, and with
    ``config.horizons`` the survival rows (every observation time before the end of the
    data, right-censored there) with theirs: one read of the features for both.

    Beyond ``config.max_rows`` observation rows, the rows of a sample of whole customers
    (:func:`~usage_features.training.labels.sample_customers`, at least ``max_rows`` rows),
    described in the third value (empty: no sample). The fourth: the rows left out because
    their windows reach before the event history
    (:func:`~usage_features.training.labels.complete_rows`; empty: none)."""
    customers = labels_source(config)
    cutoff = data_end(RepoPaths(config.repo))
    if config.train_end is not None:
        cutoff = min(cutoff, config.train_end)
    grid_start = customers[SIGNUP_AT].min().floor("D")
    history_from = history_start(RepoPaths(config.repo))
    history_from = None if history_from is None else pd.Timestamp(history_from, tz="UTC")
    progress("labelling observation rows")
    grid = observation_rows(customers, grid_start, cutoff, config.horizon_days,
                            config.interval_days)
    rows, incomplete = complete_rows(grid, customers, history_from, LONGEST_WINDOW_DAYS), {}
    if len(rows) < len(grid):
        complete = history_from + pd.Timedelta(days=LONGEST_WINDOW_DAYS)
        incomplete = {"history_from": f"{history_from:%Y-%m-%d}",
                      "observed_from": f"{complete:%Y-%m-%d}",
                      "rows": len(grid) - len(rows), "of_rows": len(grid)}
        progress(f"leaving out {len(grid) - len(rows):,} of {len(grid):,} observation rows: "
                 f"customers who signed up before the event history starts "
                 f"({history_from:%Y-%m-%d}) are observed from {complete:%Y-%m-%d} on")
        if rows.empty:
            raise LabelError(
                f"no observation row has complete features: the customers active at the "
                f"observation times signed up before the event history starts "
                f"({history_from:%Y-%m-%d}), and their {LONGEST_WINDOW_DAYS}-day windows reach "
                f"before it until {complete:%Y-%m-%d}. Ingest earlier events, or declare "
                "`events: complete_from` in usage_features.yaml if every event since signup is "
                "in the log")
    if rows.label.nunique() < 2:
        only = "churners" if rows.label.all() else "non-churners"
        raise LabelError(f"the customers table gives only {only} ({len(rows):,} rows): "
                         "labels need both classes")
    chosen, sample = sample_customers(customers, rows, config.max_rows), {}
    if chosen is not None:
        sample = {"customers": len(chosen), "of_customers": len(customers),
                  "grid_rows": len(rows), "max_rows": config.max_rows}
        customers, rows = chosen, rows[rows.customer_id.isin(chosen.customer_id)]
        sample["rows"] = len(rows)
        progress(f"sampling {sample['customers']:,} of {sample['of_customers']:,} customers: "
                 f"{len(rows):,} of {sample['grid_rows']:,} observation rows "
                 f"(--max-rows {config.max_rows:,})")
    if config.customers is not None:
        progress(f"loading {config.customers} as the repo's customers table; rebuilding the "
                 "customer profile")
        adopt_customers(config)
    if not config.horizons:
        progress(f"fetching historical features for {len(rows):,} rows from Feast")
        return historical_features(open_store(config.repo), rows), None, sample, incomplete
    survival = complete_rows(survival_rows(customers, grid_start, cutoff, config.interval_days),
                             customers, history_from, LONGEST_WINDOW_DAYS)
    progress(f"fetching historical features for {len(survival):,} rows from Feast "
             f"({len(rows):,} with the {config.horizon_days}-day label)")
    fetched = historical_features(open_store(config.repo), survival)
    keys = ["customer_id", "event_timestamp"]
    frame = rows.merge(fetched.drop(columns=["duration_days", "churned"]), on=keys,
                       how="left", validate="one_to_one", indicator=True)
    if (frame.pop("_merge") != "both").any():  # every labelled row is a survival row
        raise RuntimeError("labelled rows missing from the survival rows' features")
    return frame, SurvivalData(fetched, pd.Timestamp(cutoff)), sample, incomplete


def labels_source(config: TrainConfig) -> pd.DataFrame:
    """The customers table the labels come from: ``config.customers`` read as
    ``load-customers`` reads it, else the repo's."""
    path = config.customers or RepoPaths(config.repo).customers
    if not Path(path).exists():
        raise FileNotFoundError(f"no customers table at {path}; pass --customers FILE or run "
                                "`usage-features load-customers` first")
    if config.customers is None:  # the repo's own table, already in the table's columns
        return read_customers(Path(path)).to_pandas()
    settings = load_settings(Path(config.repo))
    return read_customers(Path(path), settings.customer_columns, settings.limits).to_pandas()


def adopt_customers(config: TrainConfig) -> int | None:
    """``--customers FILE``: make FILE the repo's customers table and rebuild (the profile
    follows it). Returns its row count (None without ``--customers``)."""
    if config.customers is None:
        return None
    paths = RepoPaths(config.repo)
    rows = None
    if Path(config.customers).resolve() != paths.customers:
        rows = load_customers(Path(config.customers), paths)
    build(paths)
    return rows


def data_end(paths: RepoPaths) -> datetime:
    """The end of observed data: the latest event's timestamp."""
    log = EventLog(paths)
    with log.snapshot() as files:
        if not files:
            raise FileNotFoundError(f"no events in {log.root}; ingest and build first")
        with connect() as con:
            (latest,) = con.execute(
                f"SELECT max(timestamp) FROM read_parquet({parquet_list(files)}, "
                "hive_partitioning = false)").fetchall()[0]
    return latest


__all__ = ["TrainConfig", "TrainResult", "adopt_customers", "data_end", "train",
           "training_data", "training_frame"]

"""Benchmark: on another product's export, the shipped model against the fight-churn book's
method, on a later test period.

    python benchmarks/bench_foreign_auc.py --customers 2000 --days 365 --vocabulary crm:25

A simulated CRM product's export (its own event names, integer account ids, no event ids, no
adoption score; ``usage_features.simulation.foreign``) goes through the plugin as a user runs
it: ingest, load the accounts, build, ``train --train-end`` (the last ``--test-days`` days held
out). On the held-out period's observation rows (every active customer, weekly, labelled with
churn within 30 days) it reports the ROC AUC of

* the shipped model, on its point-in-time features from Feast, and
* the book's method (Gold, *Fighting Churn with Data*): a logistic regression on each event
  type's count in the 28 days before the observation time and the tenure, its counts computed
  here with pandas straight from the raw export, fitted on the same training window's rows.

Results: ``benchmarks/results/foreign_auc.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
HORIZON = 30
WINDOW = 28


def book_features(export: pd.DataFrame, accounts: pd.DataFrame, rows: pd.DataFrame,
                  names: list[str]) -> np.ndarray:
    """Per row: log(1 + each type's events in the 28 days before t), then the tenure in days.
    Observation times are midnights, so the window is the 28 whole days before t's day."""
    day0 = export.time.min().floor("D")
    day = ((export.time - day0) // pd.Timedelta(days=1)).to_numpy()
    customer = {c: i for i, c in enumerate(accounts.customer_id)}
    c = export.customer_id.map(customer).to_numpy()
    k = export.type.map({n: i for i, n in enumerate(names)}).to_numpy()
    days = int(day.max()) + 2
    counts = np.zeros((len(customer), days + 1, len(names)), dtype=np.int32)
    np.add.at(counts, (c, day + 1, k), 1)
    cumulative = counts.cumsum(axis=1)  # cumulative[:, d + 1] = events on days <= d
    row_day = ((rows.event_timestamp - day0) // pd.Timedelta(days=1)).to_numpy()
    row_c = rows.customer_id.map(customer).to_numpy()
    end = np.clip(row_day, 0, days)  # events on days < row_day
    start = np.clip(row_day - WINDOW, 0, days)
    window = cumulative[row_c, end] - cumulative[row_c, start]
    signup = rows.customer_id.map(accounts.set_index("customer_id").signup_at)
    tenure = ((rows.event_timestamp - signup) / pd.Timedelta(days=1)).to_numpy()
    return np.column_stack([np.log1p(window), tenure])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--vocabulary", default="crm:25")
    parser.add_argument("--test-days", type=int, default=90)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_foreign_auc"))
    args = parser.parse_args()

    from usage_features.config import RepoPaths
    from usage_features.features.build import build_features
    from usage_features.features.retrieval import historical_features
    from usage_features.features.store import apply_definitions, open_store
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.service_layer.demo import new_feature_repo
    from usage_features.service_layer.train import TrainConfig, train
    from usage_features.simulation import SimulationConfig, simulate
    from usage_features.simulation.foreign import (
        as_foreign_export,
        foreign_accounts,
        foreign_settings_yaml,
        vocabulary_from_spec,
    )
    from usage_features.training.labels import observation_rows

    started = time.perf_counter()
    shutil.rmtree(args.work, ignore_errors=True)
    raw, repo = args.work / "raw", args.work / "feature_repo"
    raw.mkdir(parents=True)
    sim = simulate(SimulationConfig(customers=args.customers, days=args.days, seed=args.seed))
    vocabulary = vocabulary_from_spec(args.vocabulary)
    pq.write_table(as_foreign_export(sim.events, vocabulary, args.seed), raw / "export.parquet")
    pq.write_table(foreign_accounts(sim.customers), raw / "accounts.parquet")
    new_feature_repo(ROOT / "feature_repo", repo)
    (repo / "usage_features.yaml").write_text(foreign_settings_yaml(vocabulary))
    paths = RepoPaths(repo)
    summary = ingest_files([raw / "export.parquet"], paths)
    load_customers(raw / "accounts.parquet", paths)
    build_features(paths)
    apply_definitions(repo)

    accounts = pd.read_parquet(paths.customers)
    export = pd.read_parquet(raw / "export.parquet")
    export = pd.DataFrame({"customer_id": export.account_id.astype(str),
                           "time": pd.to_datetime(export.event_time, utc=True, format="ISO8601"),
                           "type": export.event_type_name.str.strip().str.lower()})
    data_end = export.time.max().ceil("D")
    train_end = data_end - pd.Timedelta(days=args.test_days)
    result = train(TrainConfig(repo=repo, train_end=train_end.to_pydatetime(),
                               importance_repeats=1))
    grid_start = accounts.signup_at.min().floor("D")
    train_rows = observation_rows(accounts, grid_start, train_end, HORIZON)
    test_rows = observation_rows(accounts, train_end, data_end, HORIZON)

    features = historical_features(open_store(repo), test_rows[["customer_id",
                                                                "event_timestamp"]])
    model_auc = roc_auc_score(test_rows.label, result.model.predict_proba(features))
    names = list(vocabulary.names)
    book = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    book.fit(book_features(export, accounts, train_rows, names), train_rows.label)
    book_auc = roc_auc_score(test_rows.label, book.predict_proba(
        book_features(export, accounts, test_rows, names))[:, 1])

    figures = {
        "events": summary.read, "customers": args.customers, "days": args.days,
        "vocabulary": args.vocabulary, "event_types": len(names), "seed": args.seed,
        "train_end": str(train_end), "test_rows": len(test_rows),
        "test_churn_rate": round(float(test_rows.label.mean()), 4),
        "shipped_model": result.model.metadata.selection.get("winner"),
        "model_roc_auc": round(float(model_auc), 4),
        "book_logistic_roc_auc": round(float(book_auc), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = ROOT / "benchmarks" / "results"
    (out / "foreign_auc.json").write_text(json.dumps(figures, indent=1))
    (out / "foreign_auc.md").write_text(
        f"# A {len(names)}-type foreign export, {summary.read:,} events, "
        f"{args.customers:,} customers\n\n"
        f"Test period after {train_end:%Y-%m-%d} ({len(test_rows):,} rows, churn rate "
        f"{figures['test_churn_rate']:.1%}):\n\n| model | ROC AUC |\n|---|---|\n"
        f"| shipped ({figures['shipped_model']}) | {model_auc:.3f} |\n"
        f"| fight-churn logistic regression (per-type 28-day counts, tenure) | "
        f"{book_auc:.3f} |\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""The main job, end to end, on the embedded defaults: what ``usage-features demo`` runs.

simulate -> ingest (with dirty rows, showing the quarantine) -> load customers -> build
features (+ feast apply) -> show one customer's events, counts and served features.
Every step runs the same operation a user's command would, in a fresh directory.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

FEATURE_REPO_FILES = ("feature_store.yaml", "churn_features.py", ".feastignore")


@dataclass(frozen=True)
class DemoConfig:
    workdir: Path = Path("demo")
    customers: int = 500
    days: int = 180
    seed: int = 7
    start: date = date(2026, 1, 1)
    dirty_fraction: float = 0.02


def new_feature_repo(template: Path, target: Path) -> Path:
    """A fresh feature repo at ``target`` with ``template``'s definitions and no data."""
    target.mkdir(parents=True, exist_ok=True)
    for name in FEATURE_REPO_FILES:
        shutil.copy(template / name, target / name)
    return target


def run_demo(config: DemoConfig, template: Path, report: Callable[[str, object], None]) -> dict:
    """Run every step, calling ``report(step, result)`` after each; returns the results."""
    from usage_features.config import RepoPaths
    from usage_features.features.build import build_features
    from usage_features.features.store import apply_definitions
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.synthetic import SimulationConfig, simulate, write_simulation

    if config.workdir.exists():
        shutil.rmtree(config.workdir)
    repo = new_feature_repo(template, config.workdir / "feature_repo")
    paths = RepoPaths(repo)
    results: dict[str, object] = {}

    def step(name: str, value: object) -> None:
        results[name] = value
        report(name, value)

    sim = simulate(SimulationConfig(customers=config.customers, days=config.days,
                                    seed=config.seed, start=config.start,
                                    dirty_fraction=config.dirty_fraction))
    events_path, customers_path = write_simulation(sim, config.workdir / "raw")
    step("simulate", {"events": sim.events.num_rows, "customers": sim.customers.num_rows,
                      "files": [str(events_path), str(customers_path)]})
    step("ingest", ingest_files([events_path], paths))
    step("load-customers", load_customers(customers_path, paths))
    step("build", build_features(paths))
    apply_definitions(repo)
    as_of = datetime.combine(config.start + timedelta(days=config.days), time(),
                             tzinfo=timezone.utc)
    step("show", _show_customer(paths, repo, as_of))
    return results


def _show_customer(paths, repo: Path, as_of: datetime) -> dict:
    """The most active customer's latest events, N-day counts and served features at ``as_of``."""
    import pandas as pd

    from usage_features.adapters.duckdb_connection import connect
    from usage_features.adapters.event_log import EventLog
    from usage_features.adapters.parquet_repository import ParquetUsageRepository
    from usage_features.features.retrieval import historical_features
    from usage_features.features.store import open_store

    (customer,) = connect().execute(
        f"SELECT customer_id FROM read_parquet('{EventLog(paths).glob}', hive_partitioning=false) "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchall()[0]
    repository = ParquetUsageRepository(paths)
    events = repository.get_events(customer)[-5:]
    counts = {n: repository.count_events_last_n_days(customer, n, as_of=as_of) for n in (7, 30, 90)}
    entity = pd.DataFrame({"customer_id": [customer], "event_timestamp": [as_of]})
    features = historical_features(open_store(repo), entity).iloc[0].drop(
        ["customer_id", "event_timestamp"])
    return {"customer_id": customer, "as_of": as_of, "latest_events": events, "counts": counts,
            "features": features.to_dict()}

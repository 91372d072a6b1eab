"""The main job, end to end, on the embedded defaults: what ``usage-features demo`` runs.

simulate -> ingest (with dirty rows, showing the quarantine) -> load customers -> build
features (+ feast apply) -> show one customer -> train (report with plots) -> materialize ->
score a few customers online -> the daily loop: ``refresh`` on each of the last simulated days
(its events arriving as one inbox file a day) -> ``monitor``. Every step runs the operation a
user's command would, in a fresh directory. The simulated period ends before today; "now" for
the demo is the start of its last ``daily_days`` days, then each of them in turn.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

FEATURE_REPO_FILES = ("feature_store*.yaml", "churn_features.py", ".feastignore")


@dataclass(frozen=True)
class DemoConfig:
    workdir: Path = Path("demo")
    customers: int = 1500
    days: int = 365
    seed: int = 7
    start: date = date(2025, 6, 1)
    dirty_fraction: float = 0.02
    scored: int = 5
    daily_days: int = 3


def new_feature_repo(template: Path, target: Path) -> Path:
    """A fresh feature repo at ``target`` with ``template``'s definitions and configs, no data."""
    target.mkdir(parents=True, exist_ok=True)
    for pattern in FEATURE_REPO_FILES:
        for path in template.glob(pattern):
            shutil.copy(path, target / path.name)
    return target


def run_demo(config: DemoConfig, template: Path, report: Callable[[str, object], None]) -> dict:
    """Run every step, calling ``report(step, result)`` after each; returns the results."""
    from usage_features.config import RepoPaths
    from usage_features.features.build import build_features
    from usage_features.features.store import apply_definitions
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.monitoring.report import MonitorConfig, monitor
    from usage_features.refresh import RefreshConfig, refresh
    from usage_features.serving.materialize import materialize
    from usage_features.simulation import SimulationConfig, simulate, write_simulation
    from usage_features.training.train import TrainConfig, train

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
    as_of = datetime.combine(config.start + timedelta(days=config.days - config.daily_days),
                             time(), tzinfo=UTC)
    history, later_days = _hold_back_days(events_path, as_of, config.workdir)
    step("ingest", ingest_files([history], paths, now=as_of))
    step("load-customers", load_customers(customers_path, paths))
    step("build", build_features(paths))
    apply_definitions(repo)
    step("show", _show_customer(paths, repo, as_of))
    step("train", train(TrainConfig(repo=repo)))
    step("materialize", materialize(repo, end=as_of))
    step("score", _score_some(paths, repo, as_of, config.scored))
    inbox = config.workdir / "inbox"
    inbox.mkdir()
    for day, arriving in enumerate(later_days, start=1):  # each day's events arrive that day
        arriving.rename(inbox / arriving.name)
        now = as_of + timedelta(days=day)
        step("refresh", refresh(RefreshConfig(repo=repo, inbox=inbox, now=now)))
    step("monitor", monitor(MonitorConfig(repo=repo)))
    return results


def _hold_back_days(events_path: Path, as_of: datetime, workdir: Path
                    ) -> tuple[Path, list[Path]]:
    """Split the raw events at ``as_of``: the history file, and one file per later day, in
    order (rows whose time cannot be read stay in the history, to be quarantined there)."""
    import pandas as pd

    events = pd.read_parquet(events_path)
    moment = pd.to_datetime(events.timestamp, utc=True, errors="coerce", format="ISO8601")
    later = moment >= pd.Timestamp(as_of)
    history = workdir / "raw" / "history.parquet"
    events[~later].to_parquet(history, index=False)
    days = []
    for day, rows in events[later].groupby(moment[later].dt.date):
        days.append(workdir / "raw" / f"events-{day}.parquet")
        rows.to_parquet(days[-1], index=False)
    return history, days


def _active_customers(paths, as_of: datetime, days: int) -> list[str]:
    """Customers with events in the ``days`` before ``as_of``, busiest first."""
    from usage_features.adapters.duckdb_connection import connect, parquet_list
    from usage_features.adapters.event_log import EventLog

    with EventLog(paths).snapshot() as files, connect() as con:
        rows = con.execute(
            f"SELECT customer_id FROM read_parquet({parquet_list(files)}, "
            "hive_partitioning=false) WHERE timestamp >= $since AND timestamp < $as_of "
            "GROUP BY 1 ORDER BY count(*) DESC, 1",
            {"since": as_of - timedelta(days=days), "as_of": as_of}).fetchall()
    return [customer for (customer,) in rows]


def _score_some(paths, repo: Path, as_of: datetime, n: int) -> list:
    """Online scores of every customer active in the last 90 days; the riskiest ``n - 1``, the
    safest one, and an unknown id are shown."""
    from usage_features.serving.scorer import ChurnScorer

    scorer = ChurnScorer.from_repo(repo)
    live = [s for s in scorer.score(_active_customers(paths, as_of, 90), as_of)
            if s.status == "active"]  # churned customers get no probability
    scores = sorted(live, key=lambda s: -s.churn_probability)
    return [*scores[: n - 1], scores[-1], *scorer.score(["cust-unknown"], as_of)]


def _show_customer(paths, repo: Path, as_of: datetime) -> dict:
    """The busiest customer's latest events, N-day counts and served features at ``as_of``."""
    import pandas as pd

    from usage_features.features.retrieval import historical_features
    from usage_features.features.store import open_store
    from usage_features.ingestion.ingest import event_repository

    customer = _active_customers(paths, as_of, 90)[0]
    repository = event_repository(paths)
    events = repository.get_events(customer)[-5:]
    counts = {n: repository.count_events_last_n_days(customer, n, as_of=as_of) for n in (7, 30, 90)}
    entity = pd.DataFrame({"customer_id": [customer], "event_timestamp": [as_of]})
    features = historical_features(open_store(repo), entity).iloc[0].drop(
        ["customer_id", "event_timestamp"])
    return {"customer_id": customer, "as_of": as_of, "latest_events": events, "counts": counts,
            "features": features.to_dict()}

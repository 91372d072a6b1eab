"""The main job, end to end, on the embedded defaults: what ``usage-features demo`` runs.

simulate -> ingest (with dirty rows, showing the quarantine) -> load customers -> build
features (+ feast apply) -> show one customer -> train (report with plots) -> materialize ->
score a few customers online -> the daily loop: ``refresh`` on each of the last simulated days
(its events arriving as one inbox file a day) -> ``monitor`` -> the token the web pages' sign-in
will ask for. Every step runs the operation a
user's command would, in a fresh directory. The simulated period ends before today; "now" for
the demo is the start of its last ``daily_days`` days, then each of them in turn.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd

from usage_features.adapters.duckdb_connection import connect, parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.features.retrieval import historical_features
from usage_features.ingestion.ingest import event_repository
from usage_features.service_layer.bootstrap import Context, bootstrap
from usage_features.service_layer.build import build
from usage_features.service_layer.ingest import ingest
from usage_features.service_layer.load_customers import load_customers
from usage_features.service_layer.materialize import materialize
from usage_features.service_layer.monitor import monitor
from usage_features.service_layer.pages.token import page_token
from usage_features.service_layer.refresh import refresh
from usage_features.service_layer.score import score
from usage_features.service_layer.train import TrainConfig, train
from usage_features.simulation import SimulationConfig, simulate, write_simulation

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
    #: The API token (``USAGE_FEATURES_API_TOKEN``) `serve` will run with, if any: the web
    #: pages' sign-in asks for it; without one, for the repo's own (printed at the end).
    api_token: str | None = None


def new_feature_repo(template: Path, target: Path) -> Path:
    """A fresh feature repo at ``target`` with ``template``'s definitions and configs, no data."""
    target.mkdir(parents=True, exist_ok=True)
    for pattern in FEATURE_REPO_FILES:
        for path in template.glob(pattern):
            shutil.copy(path, target / path.name)
    return target


def run_demo(config: DemoConfig, template: Path, report: Callable[[str, object], None]) -> dict:
    """Run every step, calling ``report(step, result)`` after each; returns the results."""
    if config.workdir.exists():
        shutil.rmtree(config.workdir)
    repo = new_feature_repo(template, config.workdir / "feature_repo")
    context = bootstrap(repo)
    paths = context.paths
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
    step("ingest", ingest([history], paths, now=as_of))
    step("load-customers", load_customers(customers_path, paths))
    step("build", build(paths))
    step("show", _show_customer(context, as_of))
    step("train", train(TrainConfig(repo=repo)))
    step("materialize", materialize(repo, end=as_of))
    step("score", _score_some(context, as_of, config.scored))
    inbox = config.workdir / "inbox"
    inbox.mkdir()
    for day, arriving in enumerate(later_days, start=1):  # each day's events arrive that day
        arriving.rename(inbox / arriving.name)
        now = as_of + timedelta(days=day)
        step("refresh", refresh(bootstrap(repo), inbox=inbox, now=now))
    step("monitor", monitor(bootstrap(repo)))
    step("web", page_token(paths, config.api_token))  # what `serve` will ask for at sign-in
    return results


def _hold_back_days(events_path: Path, as_of: datetime, workdir: Path
                    ) -> tuple[Path, list[Path]]:
    """Split the raw events at ``as_of``: the history file, and one file per later day, in
    order (rows whose time cannot be read stay in the history, to be quarantined there)."""
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
    with EventLog(paths).snapshot() as files, connect() as con:
        rows = con.execute(
            f"SELECT customer_id FROM read_parquet({parquet_list(files)}, "
            "hive_partitioning=false) WHERE timestamp >= $since AND timestamp < $as_of "
            "GROUP BY 1 ORDER BY count(*) DESC, 1",
            {"since": as_of - timedelta(days=days), "as_of": as_of}).fetchall()
    return [customer for (customer,) in rows]


def _score_some(context: Context, as_of: datetime, n: int) -> list:
    """Online scores of every customer active in the last 90 days; the riskiest ``n - 1``, the
    safest one, and an unknown id are shown."""
    recent = _active_customers(context.paths, as_of, 90)
    live = [s for s in score(context.scorer, recent, as_of).scores
            if s.churn_probability is not None]  # churned customers get no probability
    scores = sorted(live, key=lambda s: -s.churn_probability)
    return [*scores[: n - 1], scores[-1], *score(context.scorer, ["cust-unknown"], as_of).scores]


def _show_customer(context: Context, as_of: datetime) -> dict:
    """The busiest customer's latest events, N-day counts and served features at ``as_of``."""
    paths = context.paths
    customer = _active_customers(paths, as_of, 90)[0]
    repository = event_repository(paths)
    events = repository.get_events(customer)[-5:]
    counts = {n: repository.count_events_last_n_days(customer, n, as_of=as_of) for n in (7, 30, 90)}
    entity = pd.DataFrame({"customer_id": [customer], "event_timestamp": [as_of]})
    features = historical_features(context.store, entity).iloc[0].drop(
        ["customer_id", "event_timestamp"])
    return {"customer_id": customer, "as_of": as_of, "latest_events": events, "counts": counts,
            "features": features.to_dict()}

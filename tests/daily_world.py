"""A small simulated business run day by day: history ingested and a model trained, then one
inbox file per later day, for the tests of ``refresh`` and ``monitor``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from usage_features.cli import app
from usage_features.config import RepoPaths

# FIRST_DAILY: the training grid falls on START's weekday, the first refresh two days later
START, DAYS, FIRST_DAILY = date(2025, 1, 1), 203, 197
runner = CliRunner()


def day_end(day_index: int) -> datetime:
    """The refresh time of a simulated day: its end, i.e. the next day's midnight."""
    return datetime.combine(START + timedelta(days=day_index + 1), time(), tzinfo=UTC)


@dataclass
class World:
    work: Path
    repo: Path
    daily: dict[int, pd.DataFrame]
    customers: pd.DataFrame
    events: pd.DataFrame  # every event, delivered or not

    def deliver(self, d: int) -> None:
        (self.work / "inbox").mkdir(exist_ok=True)
        self.daily[d].to_parquet(self.work / "inbox" / f"events-{d}.parquet", index=False)

    def refresh(self, d: int, *extra: str):
        return runner.invoke(app, ["refresh", "--repo", str(self.repo), "--inbox",
                                   str(self.work / "inbox"), "--now", day_end(d).isoformat(),
                                   "--json", *extra])

    def log_rows(self) -> int:
        return sum(pq.ParquetFile(p).metadata.num_rows
                   for p in RepoPaths(self.repo).events.rglob("*.parquet"))


def make_world(work: Path, halve_usage_days: int = 0, model_from: World | None = None
               ) -> World:
    """Simulated history before FIRST_DAILY in a trained repo.

    ``halve_usage_days``: every customer's usage halved (a random half of the events dropped)
    from that many days before FIRST_DAILY on. ``model_from``: take that world's model and its
    report instead of training one (a model that saw normal usage, scoring the drifted kind).
    """
    import shutil

    import numpy as np

    from usage_features.features.build import build_features
    from usage_features.features.store import apply_definitions
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.service_layer.train import TrainConfig, train
    from usage_features.simulation import SimulationConfig, simulate

    sim = simulate(SimulationConfig(customers=300, days=DAYS, seed=21, start=START))
    events = sim.events.to_pandas()
    day = (events.timestamp - pd.Timestamp(START, tz="UTC")).dt.days
    if halve_usage_days:
        dropped = (day >= FIRST_DAILY - halve_usage_days) & (
            np.random.default_rng(0).random(len(events)) < 0.5)
        events, day = events[~dropped], day[~dropped]
    repo = copy_feature_repo(work / "feature_repo")
    paths = RepoPaths(repo)
    events[day < FIRST_DAILY].to_parquet(work / "history.parquet", index=False)
    ingest_files([work / "history.parquet"], paths, now=day_end(FIRST_DAILY - 1))
    sim.customers.to_pandas().to_parquet(work / "customers.parquet", index=False)
    load_customers(work / "customers.parquet", paths)
    build_features(paths)
    apply_definitions(repo)
    if model_from is None:
        train(TrainConfig(repo=repo, train_end=day_end(FIRST_DAILY - 1), importance_repeats=1))
    else:
        shutil.copytree(RepoPaths(model_from.repo).data / "models", paths.data / "models")
        shutil.copytree(RepoPaths(model_from.repo).reports, paths.reports)
    daily = {d: events[day == d] for d in range(FIRST_DAILY, DAYS)}
    return World(work, repo, daily, sim.customers.to_pandas(), events)

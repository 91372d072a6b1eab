"""Benchmark: the daily loop, ``refresh`` then ``monitor``, on a business of N customers.

    python benchmarks/bench_daily.py --customers 10000 --days 365 --work /tmp/bench-daily
    python benchmarks/bench_daily.py ... --sink postgresql://127.0.0.1/test  # and PostgreSQL

Prepares once (kept in ``--work`` and reused): simulates ``days`` days, ingests all but the
last, builds, trains and materializes. Then delivers the last day's events (about 30,000 at
10,000 customers) as one inbox file and times, each in its own process, ``refresh`` (its steps:
ingest, build, materialize, score every active customer, write the snapshot) and ``monitor``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import report, run_phase

ROOT = Path(__file__).resolve().parents[1]
START = date(2025, 1, 1)


def last_day(days: int) -> datetime:
    return datetime.combine(START + timedelta(days=days - 1), clock(), tzinfo=UTC)


def phase_prepare(work: Path, customers: int, days: int) -> None:
    import pandas as pd

    from usage_features.config import RepoPaths
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.service_layer.build import build
    from usage_features.service_layer.demo import new_feature_repo
    from usage_features.service_layer.materialize import materialize
    from usage_features.service_layer.train import TrainConfig, train
    from usage_features.simulation import SimulationConfig, simulate, write_simulation

    started = time.perf_counter()
    shutil.rmtree(work, ignore_errors=True)
    sim = simulate(SimulationConfig(customers=customers, days=days, seed=3, start=START))
    events_path, customers_path = write_simulation(sim, work / "raw")
    events = pd.read_parquet(events_path)
    cut = last_day(days)
    events[events.timestamp < cut].to_parquet(work / "raw" / "history.parquet", index=False)
    events[events.timestamp >= cut].to_parquet(work / "raw" / "last_day.parquet", index=False)
    repo = new_feature_repo(ROOT / "feature_repo", work / "feature_repo")
    paths = RepoPaths(repo)
    ingest_files([work / "raw" / "history.parquet"], paths, now=cut)
    load_customers(customers_path, paths)
    build(paths)  # and `feast apply`, recorded: the refresh applies only if definitions change
    train(TrainConfig(repo=repo, importance_repeats=1))
    materialize(repo, end=cut)
    shutil.copytree(repo, work / "prepared")
    report(phase="prepare", seconds=round(time.perf_counter() - started, 1),
           events_last_day=int((events.timestamp >= cut).sum()))


def phase_refresh(work: Path, days: int, sink: str | None) -> None:
    from usage_features.service_layer.bootstrap import bootstrap
    from usage_features.service_layer.refresh import refresh

    repo = work / "feature_repo"
    shutil.rmtree(repo)
    shutil.copytree(work / "prepared", repo)  # the same starting day on every run
    inbox = work / "inbox"
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir()
    shutil.copy(work / "raw" / "last_day.parquet", inbox / "events-last-day.parquet")
    started = time.perf_counter()
    summary = refresh(bootstrap(repo, sink=sink), inbox=inbox,
                      now=last_day(days) + timedelta(1))
    report(phase="refresh", seconds=round(time.perf_counter() - started, 2),
           steps=summary.seconds, events=summary.events_accepted, scored=summary.scored,
           active=summary.active_customers, alarms=summary.alarms)


def phase_build(work: Path, days: int, check: bool) -> None:
    from usage_features.adapters.duckdb_connection import connect, parquet_list
    from usage_features.config import RepoPaths
    from usage_features.features.build import build_features
    from usage_features.ingestion import ingest_files

    repo = RepoPaths(work / "feature_repo_build")
    shutil.rmtree(repo.repo, ignore_errors=True)
    shutil.copytree(work / "prepared", repo.repo)
    now = last_day(days) + timedelta(1)
    ingest_files([work / "raw" / "last_day.parquet"], repo, now=now)
    cpu = _cpu_seconds()
    started = time.perf_counter()
    summary = build_features(repo)
    figures = {"seconds": round(time.perf_counter() - started, 2),
               "cpu_seconds": round(_cpu_seconds() - cpu, 2),
               "customers_recomputed": summary.customers_recomputed,
               "months_rewritten": len(summary.months_rewritten)}
    if check:
        full = RepoPaths(work / "feature_repo_full")
        shutil.rmtree(full.repo, ignore_errors=True)
        shutil.copytree(work / "prepared", full.repo, ignore=shutil.ignore_patterns("data"))
        ingest_files([work / "raw" / "history.parquet", work / "raw" / "last_day.parquet"],
                     full, now=now)
        build_features(full)
        files = [parquet_list(sorted(p.customer_usage.glob("*.parquet"))) for p in (repo, full)]
        with connect(spill_to=work / ".spill") as con:
            (figures["differing_rows"],) = con.execute(
                f"SELECT count(*) FROM ((SELECT * FROM read_parquet({files[0]}) EXCEPT ALL "
                f"SELECT * FROM read_parquet({files[1]})) UNION ALL (SELECT * FROM "
                f"read_parquet({files[1]}) EXCEPT ALL SELECT * FROM read_parquet({files[0]})))"
            ).fetchone()
        months = [sorted(p.name for p in r.customer_usage.glob("*.parquet")) for r in (repo, full)]
        figures["same_month_files"] = months[0] == months[1]
    report(phase="build", **figures)
    if check and (figures["differing_rows"] or not figures["same_month_files"]):
        raise SystemExit(f"the incremental build differs from the full build: {figures}")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase_monitor(work: Path) -> None:
    from usage_features.service_layer.bootstrap import bootstrap
    from usage_features.service_layer.monitor import monitor

    started = time.perf_counter()
    result = monitor(bootstrap(work / "feature_repo"))
    report(phase="monitor", seconds=round(time.perf_counter() - started, 2),
           alarms=result.alarms, score_psi=round(result.score_psi, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("phase", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-daily"))
    parser.add_argument("--check", action="store_true",
                        help="build phase: compare with a full build of every event")
    parser.add_argument("--sink", help="also deliver the scores to this PostgreSQL conninfo "
                                       "(as `refresh --sink`)")
    args = parser.parse_args()
    if args.phase == "prepare":
        return phase_prepare(args.work, args.customers, args.days)
    if args.phase == "refresh":
        return phase_refresh(args.work, args.days, args.sink)
    if args.phase == "build":
        return phase_build(args.work, args.days, args.check)
    if args.phase == "monitor":
        return phase_monitor(args.work)
    script = str(Path(__file__).resolve())
    sizes = ["--customers", str(args.customers), "--days", str(args.days),
             "--work", str(args.work)]
    results = []
    if not (args.work / "prepared").exists():
        results.append(run_phase(script, "prepare", *sizes))
    sink = ["--sink", args.sink] if args.sink else []
    results += [run_phase(script, "refresh", *sizes, *sink),
                run_phase(script, "monitor", *sizes)]
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()

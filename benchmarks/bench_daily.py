"""Benchmark: the daily job at scale, each figure beside its target (issue 27).

    python benchmarks/bench_daily.py --customers 100000 --work /work/daily   # 10^8 events
    python benchmarks/bench_daily.py --customers 10000 --work /tmp/daily     # 10^7 events
    python benchmarks/bench_daily.py ... --sink postgresql://127.0.0.1/test  # and PostgreSQL
    python benchmarks/bench_daily.py build --work DIR [--check]              # the build alone

From one fresh run (each phase in its own process, so its wall time and peak memory are its
own; the load average is noted before each phase):

1. ``simulate``: ``usage-features simulate --customers N --days 365 --seed 1``, split into the
   history (every day but the last), the last day (one inbox file) and the 36 days before it;
2. ``prepare``: a repo of the history (ingest, customers, build and ``feast apply``,
   materialize to the last day's start); ``train`` on it (timed: a target of its own);
3. ``prepare-recent``: a repo of the 36 days only, the same customers (declared complete from
   the simulation's start, so that its refresh scores them all, as the full repo's does);
4. ``refresh`` of the last day with ``--model`` (ingest, incremental build, materialize, score
   every active customer, snapshot), on a copy of each prepared repo: the ratio of the two is
   what grows with history;
5. ``monitor``; historical retrieval of 100,000 and 1,000 entity rows through
   ``churn_model_v1`` (first call in a new process), beside the floor (a presorted in-memory
   binary search) and, at 10,000 customers or with ``--compare-stores``, Feast's duckdb store.

Kept in ``--work`` and reused: a phase whose output exists is skipped (``--fresh`` starts over).
Writes ``results/daily_<customers>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import peak_rss_mib, report, run_phase
from run_all import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FEATURES = str(HERE / "bench_features.py")
START = date(2025, 1, 1)
RECENT_DAYS = 36
#: The issue's targets: (figure, size in customers or None for every size, limit, unit).
TARGETS = [
    ("refresh", 100_000, 60, "s"), ("refresh", 100_000, 2048, "MiB"),
    ("refresh / refresh of the last 36 days", 100_000, 1.5, "x"),
    ("train", 100_000, 600, "s"), ("train", 100_000, 6144, "MiB"),
    ("monitor", 100_000, 60, "s"),
    ("retrieve 100,000 rows", 10_000, 0.5, "s"), ("retrieve 100,000 rows", 100_000, 1.2, "s"),
    ("retrieve 100,000 rows, again", 10_000, 0.5, "s"),
    ("retrieve 100,000 rows, again", 100_000, 1.2, "s"),
    ("retrieve 100,000 rows", None, 1536, "MiB"), ("retrieve 1,000 rows", 100_000, 0.2, "s"),
    ("retrieve 1,000 rows, again", 100_000, 0.2, "s"),
]


def last_day(days: int) -> datetime:
    return datetime.combine(START + timedelta(days=days - 1), clock(), tzinfo=UTC)


def phase_simulate(work: Path, customers: int, days: int, seed: int) -> None:
    """The simulation, as ``usage-features simulate``, split into history, last day and the
    36 days before the last."""
    from usage_features.adapters.duckdb_connection import connect
    from usage_features.simulation import SimulationConfig, simulate_to_files

    started = time.perf_counter()
    raw = work / "raw"
    written = simulate_to_files(
        SimulationConfig(customers=customers, days=days, seed=seed, start=START), raw)
    cut = last_day(days)
    recent = cut - timedelta(days=RECENT_DAYS)
    counts = {}
    with connect(spill_to=work / ".spill") as con:
        for name, where in [("history", f"timestamp < '{cut.isoformat()}'"),
                            ("last_day", f"timestamp >= '{cut.isoformat()}'"),
                            ("recent", f"timestamp >= '{recent.isoformat()}' "
                                       f"AND timestamp < '{cut.isoformat()}'")]:
            out = raw / f"{name}.parquet"
            con.execute(f"COPY (SELECT * FROM read_parquet('{raw / 'events.parquet'}') "
                        f"WHERE {where}) TO '{out}' (FORMAT parquet)")
            (counts[f"events_{name}"],) = con.execute(
                f"SELECT count(*) FROM read_parquet('{out}')").fetchone()
    report(phase="simulate", events=written.events, **counts,
           seconds=round(time.perf_counter() - started, 1))


def phase_prepare(work: Path, days: int, recent: bool) -> None:
    """A repo of the history (or of its last 36 days), built and materialized to the start of
    the last day, then built again (nothing new: it reads every table once and records the
    files' times, as the day before's build leaves them): what every refresh below starts
    from."""
    from usage_features.adapters.checksums import RACY_SECONDS
    from usage_features.config import RepoPaths
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.ingestion.settings import settings_path
    from usage_features.service_layer.build import build
    from usage_features.service_layer.demo import new_feature_repo
    from usage_features.service_layer.materialize import materialize

    repo = work / ("prepared_recent" if recent else "prepared")
    shutil.rmtree(repo, ignore_errors=True)
    cut = last_day(days)
    seconds = {}
    started = time.perf_counter()
    new_feature_repo(ROOT / "feature_repo", repo)
    if recent:
        # Its history starts 36 days before the last day, after every customer's signup: the
        # scorer would call them all incomplete (their 90-day windows reach before it) and
        # score none. Declared complete from the simulation's start, it scores every active
        # customer as the full repo does: the same work, from 36 days of events (its scores
        # are not meant to be right; only its time is compared).
        settings_path(repo).write_text(f"events:\n  complete_from: {START}\n")
    paths = RepoPaths(repo)
    ingest_files([work / "raw" / ("recent.parquet" if recent else "history.parquet")], paths,
                 now=cut)
    load_customers(work / "raw" / "customers.parquet", paths)
    seconds["ingest"] = round(time.perf_counter() - started, 1)
    build(paths)  # and `feast apply`, recorded: the refresh applies only if definitions change
    seconds["build"] = round(time.perf_counter() - started - sum(seconds.values()), 1)
    materialize(repo, end=cut)
    seconds["materialize"] = round(time.perf_counter() - started - sum(seconds.values()), 1)
    # as a day's refresh finds its repo: every table read whole once since it was written
    # (their times recorded), so the refresh's build reads only what changed since
    time.sleep(RACY_SECONDS)
    build(paths)
    seconds["check"] = round(time.perf_counter() - started - sum(seconds.values()), 1)
    report(phase="prepare-recent" if recent else "prepare", steps=seconds,
           seconds=round(time.perf_counter() - started, 1))


def phase_train(work: Path) -> None:
    """``train`` on the prepared history, default settings: the model every refresh uses."""
    from usage_features.service_layer.train import TrainConfig, train

    started = time.perf_counter()

    def progress(message: str) -> None:  # on stderr: where the time goes
        print(f"{time.perf_counter() - started:7.1f} s {peak_rss_mib():7.0f} MiB  {message}",
              file=sys.stderr, flush=True)

    result = train(TrainConfig(repo=work / "prepared", model_out=work / "model.skops"),
                   progress)
    report(phase="train", seconds=round(time.perf_counter() - started, 1), **result.counts)


def phase_refresh(work: Path, days: int, recent: bool, sink: str | None) -> None:
    """``refresh --model`` of the last day, on a fresh copy of the prepared repo."""
    from usage_features.service_layer.bootstrap import bootstrap
    from usage_features.service_layer.refresh import refresh

    suffix = "_recent" if recent else ""
    repo = work / f"feature_repo{suffix}"
    shutil.rmtree(repo, ignore_errors=True)
    # the same starting day on every run; the files no step rewrites in place (the event log's
    # and the month files with their sidecars and key indexes: a build writes new ones and
    # renames them in) are hard links, so the copy does not push 12 GB out of the page cache,
    # which a real day's refresh does not do either
    shutil.copytree(work / f"prepared{suffix}", repo, copy_function=_link_write_once)
    inbox = work / f"inbox{suffix}"
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir()
    shutil.copy(work / "raw" / "last_day.parquet", inbox / "events-last-day.parquet")
    peaks: dict[str, int] = {}  # peak memory so far as each step starts: the steps' own peaks

    def note(step: str) -> None:
        peaks[step] = round(peak_rss_mib())

    started = time.perf_counter()
    summary = refresh(bootstrap(repo, model_path=work / "model.skops", sink=sink), inbox=inbox,
                      now=last_day(days) + timedelta(1), progress=note)
    report(phase="refresh-recent" if recent else "refresh",
           seconds=round(time.perf_counter() - started, 2), steps=summary.seconds,
           peak_rss_mib_as_steps_start=peaks, events=summary.events_accepted,
           scored=summary.scored, active=summary.active_customers, alarms=summary.alarms)


def _link_write_once(source: str, target: str) -> None:
    """``shutil.copytree``'s copy: a hard link for a file written once, a copy otherwise."""
    parts = Path(source).parts
    if source.endswith((".parquet", ".rows", ".keys")) and (
            "customer_usage" in parts or any(p.startswith("event_date=") for p in parts)):
        os.link(source, target)
    else:
        shutil.copy2(source, target)


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
    result = monitor(bootstrap(work / "feature_repo", model_path=work / "model.skops"))
    report(phase="monitor", seconds=round(time.perf_counter() - started, 2),
           alarms=result.alarms, score_psi=round(result.score_psi, 4))


def plan(args) -> list[tuple[str, list[str], Path | None]]:
    """(figure, the phase's command line, the output that makes it done) in order."""
    work, me = args.work, str(Path(__file__).resolve())
    sizes = ["--customers", str(args.customers), "--days", str(args.days), "--work", str(work)]
    raw = work / "raw" / "recent.parquet"
    sink = ["--sink", args.sink] if args.sink else []
    retrieve = [FEATURES, "retrieve", "--workdir", str(work)]
    steps = [("simulate", [me, "simulate", *sizes, "--seed", str(args.seed)], raw),
             ("prepare", [me, "prepare", *sizes], work / "prepared" / "feature_store.yaml"),
             ("train", [me, "train", *sizes], work / "model.skops"),
             ("prepare the last 36 days", [me, "prepare-recent", *sizes],
              work / "prepared_recent" / "feature_store.yaml"),
             ("refresh", [me, "refresh", *sizes, *sink], None),
             ("refresh of the last 36 days", [me, "refresh-recent", *sizes, *sink], None),
             ("monitor", [me, "monitor", *sizes], None),
             # as the files are after the refresh (its copies of the repo push part of
             # them out of the page cache), then again in a new process: from the cache
             ("retrieve 100,000 rows", [*retrieve, "--entity-rows", "100000"], None),
             ("retrieve 1,000 rows", [*retrieve, "--entity-rows", "1000"], None),
             ("retrieve 100,000 rows, again", [*retrieve, "--entity-rows", "100000"], None),
             ("retrieve 1,000 rows, again", [*retrieve, "--entity-rows", "1000"], None),
             ("retrieve 100,000 rows, floor: presorted in-memory binary search",
              [*retrieve, "--entity-rows", "100000", "--store", "floor"], None)]
    if args.compare_stores or args.customers <= 10_000:
        steps.append(("retrieve 100,000 rows, Feast's duckdb store",
                      [*retrieve, "--entity-rows", "100000", "--store", "duckdb"], None))
    return steps


def targets_met(runs: dict[str, dict], customers: int) -> list[dict]:
    """Each of the issue's targets for this size beside its figure."""
    out = []
    for figure, size, limit, unit in TARGETS:
        if size not in (None, customers):
            continue
        if unit == "x":
            a, b = runs.get("refresh", {}), runs.get("refresh of the last 36 days", {})
            value = round(a["seconds"] / b["seconds"], 2) if "seconds" in a and "seconds" in b \
                else None
        else:
            value = runs.get(figure, {}).get("seconds" if unit == "s" else "peak_rss_mib")
        out.append({"figure": figure, "unit": unit, "measured": value, "target": limit,
                    "met": value is not None and value <= limit})
    return out


def markdown(runs: dict[str, dict], met: list[dict], about: dict, customers: int) -> str:
    events = runs.get("simulate", {}).get("events")
    lines = [f"{customers:,} customers x 365 days ({events or '?':,} events); machine: "
             f"{about['cpus']} CPUs ({about.get('cpu')}), {about['memory_gib']} GiB, "
             f"DuckDB {about['duckdb']}, Feast {about['feast']}; {about['date']}.", "",
             "| phase | wall | peak memory | load average before (1 min) | notes |",
             "|---|---|---|---|---|"]
    for name, r in runs.items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error'][:80]} | | | |")
            continue
        notes = ", ".join(f"{k} {v}" for k, v in (r.get("steps") or {}).items())
        notes += " (kept from an earlier run)" if r.get("reused") else ""
        cpu = f"{r['cpu_seconds']} CPU-s" if "cpu_seconds" in r else ""
        lines.append(f"| {name} | {r.get('seconds')} s {cpu} | {r.get('peak_rss_mib', 0):,} MiB "
                     f"| {r.get('load_before')} | {notes} |")
    lines += ["", "| target | measured | limit | met |", "|---|---|---|---|"]
    lines += [f"| {m['figure']} ({m['unit']}) | {m['measured']} | {m['target']} | "
              f"{'yes' if m['met'] else '**no**'} |" for m in met]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-daily"))
    parser.add_argument("--fresh", action="store_true", help="start over: remove --work first")
    parser.add_argument("--compare-stores", action="store_true",
                        help="also retrieve with Feast's duckdb store (always at <= 10,000)")
    parser.add_argument("--check", action="store_true",
                        help="build phase: compare with a full build of every event")
    parser.add_argument("--sink", help="also deliver the scores to this PostgreSQL conninfo "
                                       "(as `refresh --sink`)")
    args = parser.parse_args()
    phases = {"simulate": lambda: phase_simulate(args.work, args.customers, args.days, args.seed),
              "prepare": lambda: phase_prepare(args.work, args.days, recent=False),
              "prepare-recent": lambda: phase_prepare(args.work, args.days, recent=True),
              "train": lambda: phase_train(args.work),
              "refresh": lambda: phase_refresh(args.work, args.days, False, args.sink),
              "refresh-recent": lambda: phase_refresh(args.work, args.days, True, args.sink),
              "monitor": lambda: phase_monitor(args.work),
              "build": lambda: phase_build(args.work, args.days, args.check)}
    if args.phase:  # in a process of its own, set as the console script sets its process
        from usage_features.cli import set_up_process

        set_up_process()
        return phases[args.phase]()
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    out = HERE / "results" / f"daily_{args.customers}"
    done = json.loads(out.with_suffix(".json").read_text()).get("runs", {}) \
        if out.with_suffix(".json").exists() and not args.fresh else {}
    runs: dict[str, dict] = {}
    for name, command, output in plan(args):
        if output is not None and output.exists() and name in done:
            runs[name] = {**done[name], "reused": True}
            continue
        load = round(os.getloadavg()[0], 2)
        runs[name] = {**run_phase(*command), "load_before": load}
        print(json.dumps({"step": name, **runs[name]}), flush=True)
        write_results(out, runs, args.customers)  # after each phase: a later run reuses it
    print(out.with_suffix(".md").read_text())


def write_results(out: Path, runs: dict[str, dict], customers: int) -> None:
    about = machine()
    met = targets_met(runs, customers)
    out.with_suffix(".json").write_text(json.dumps(
        {"machine": about, "customers": customers, "runs": runs, "targets": met}, indent=1))
    out.with_suffix(".md").write_text(markdown(runs, met, about, customers))


if __name__ == "__main__":
    main()

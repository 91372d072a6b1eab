"""The scaling benchmark: every phase at 10^7 and 10^8 events in one run, with growth factors.

    python benchmarks/bench_large.py                      # 10,000 and 100,000 customers x 365 days
    python benchmarks/bench_large.py --sizes 10000 30000  # other sizes (customers)
    python benchmarks/bench_large.py --build-only 300000  # add a build-only size (3 x 10^8)
    python benchmarks/bench_large.py --reuse-raw          # events simulated by an earlier run

Opt-in (``make bench-large``; about 10 minutes on 2 cores, and ~20 GB of disk per 10^8 events
under ``--workdir``). Each phase runs in its own process, so its wall time and peak memory
(``ru_maxrss``) are its own: simulate, ingest, a full DuckDB build, and historical retrieval of
100,000 and of 1,000 entity rows through ``churn_model_v1`` with this project's offline store;
on the first size, an incremental build of the last day's events checked row for row against
the full build (``bench_features.py incremental``).
``--compare-stores`` adds Feast's ``duckdb`` store on the first size. DuckDB's working memory is
``$USAGE_FEATURES_MEMORY_LIMIT`` (default: a sixth of the machine's memory). Writes
``results/large.json`` and ``results/large.md``: each phase's time and peak memory per size,
and each size's growth over the first: events, time, and time per event (1.0 = linear).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import run_phase
from run_all import machine

HERE = Path(__file__).resolve().parent
FEATURES = str(HERE / "bench_features.py")


def phases(customers: int, work: Path, build_only: bool, first: bool,
           compare: bool) -> list[tuple]:
    common = ["--workdir", str(work)]
    out = [("simulate", ["simulate", *common, "--customers", str(customers), "--days", "365"]),
           ("ingest", ["ingest", *common]), ("build", ["build", *common])]
    if not build_only:
        out += [("retrieve 100,000 rows", ["retrieve", *common, "--entity-rows", "100000"]),
                ("retrieve 100,000 rows, floor: presorted in-memory binary search",
                 ["retrieve", *common, "--entity-rows", "100000", "--store", "floor"]),
                ("retrieve 1,000 rows", ["retrieve", *common, "--entity-rows", "1000"])]
        if first:  # the daily loop at scale: incremental build == full build, exactly
            out.append(("incremental build of the last day", ["incremental", *common]))
        if first and compare:
            out.append(("retrieve 100,000 rows, Feast duckdb store",
                        ["retrieve", *common, "--entity-rows", "100000", "--store", "duckdb"]))
    return out


def markdown(runs: dict[int, dict[str, dict]], events: dict[int, int], about: dict) -> str:
    sizes = list(runs)
    first = sizes[0]
    lines = [f"Machine: {about['cpus']} CPUs, {about['memory_gib']} GiB, DuckDB "
             f"{about['duckdb']}, Feast {about['feast']}; {about['date']}.", "",
             "| phase | " + " | ".join(f"{events.get(s, 0):,} events" for s in sizes)
             + " | " + " | ".join(f"growth x{events.get(s, 0) / events[first]:.1f} events: "
                                  "time (per event)" for s in sizes[1:]) + " |",
             "|---" * (2 * len(sizes)) + "|"]
    names = list(dict.fromkeys(name for size in sizes for name in runs[size]))
    for name in names:
        cells = []
        for size in sizes:
            r = runs[size].get(name)
            cells.append("" if r is None else "error: " + r["error"][:60] if "error" in r
                         else f"{r['seconds']} s, {r['peak_rss_mib']:,} MiB" + _differing(r))
        growth = []
        for size in sizes[1:]:
            a, b = runs[first].get(name), runs[size].get(name)
            if not a or not b or "error" in a or "error" in b or not a["seconds"]:
                growth.append("")
                continue
            factor = b["seconds"] / a["seconds"]
            scale = events[size] / events[first]
            per_event = f" ({factor / scale:.2f})" if not name.startswith("retrieve") else ""
            growth.append(f"x{factor:.2f}{per_event}")
        lines.append(f"| {name} | " + " | ".join(cells + growth) + " |")
    return "\n".join(lines) + "\n"


def _differing(result: dict) -> str:
    """The incremental phase's check: rows differing from the full build, in both tables."""
    if "differing_usage_rows" not in result:
        return ""
    return (f"; rows differing from the full build: {result['differing_usage_rows']} feature, "
            f"{result['differing_daily_rows']} daily")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--build-only", type=int, nargs="*", default=[])
    parser.add_argument("--compare-stores", action="store_true")
    parser.add_argument("--reuse-raw", action="store_true",
                        help="skip simulating a size whose raw events are already in --workdir "
                             "(same customers, 365 days, seed 1): its other phases still run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/usage-features-large"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "large")
    args = parser.parse_args()
    runs: dict[int, dict[str, dict]] = {}
    events: dict[int, int] = {}
    for i, customers in enumerate([*args.sizes, *args.build_only]):
        work = args.workdir / str(customers)
        build_only = customers in args.build_only and customers not in args.sizes
        runs[customers] = {}
        for name, phase in phases(customers, work, build_only, i == 0, args.compare_stores):
            raw = work / "raw" / "events.parquet"
            if name == "simulate" and args.reuse_raw and raw.exists():
                result = {"phase": "simulate", "reused": str(raw),
                          "events": pq.ParquetFile(raw).metadata.num_rows}
                print(json.dumps({"customers": customers, "step": name, **result}), flush=True)
                events[customers] = result["events"]
                continue
            result = run_phase(FEATURES, *phase)
            print(json.dumps({"customers": customers, "step": name, **result}), flush=True)
            runs[customers][name] = result
            if name == "simulate" and "events" in result:
                events[customers] = result["events"]
    about = machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(
        {"machine": about, "events": events, "runs": runs}, indent=1))
    args.out.with_suffix(".md").write_text(markdown(runs, events, about))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()

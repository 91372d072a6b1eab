"""Benchmark: simulate and write a usage log.

    python benchmarks/bench_simulate.py --customers 10000 --days 365

Prints the events, wall time (simulate, write, total), events per second and the process's peak
resident memory, then the same figures as one JSON line (like the other benchmark scripts).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from usage_features.simulation import SimulationConfig, simulate, write_simulation  # noqa: E402


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dirty-fraction", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the files (default: a temporary directory)")
    args = parser.parse_args(argv)

    config = SimulationConfig(customers=args.customers, days=args.days, seed=args.seed,
                              dirty_fraction=args.dirty_fraction)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        started = time.perf_counter()
        sim = simulate(config)
        simulated = time.perf_counter()
        events_path, customers_path = write_simulation(sim, out)
        finished = time.perf_counter()
        size_mib = (events_path.stat().st_size + customers_path.stat().st_size) / 2**20
    events = sim.events.num_rows
    total = finished - started
    figures = {
        "customers": args.customers, "days": args.days, "events": events,
        "simulate_seconds": round(simulated - started, 2),
        "write_seconds": round(finished - simulated, 2),
        "seconds": round(total, 2),
        "events_per_second": round(events / total),
        "parquet_mib": round(size_mib, 1),
        "peak_rss_mib": round(peak_rss_mib()),
    }
    print(f"{events:,} events for {args.customers:,} customers over {args.days} days")
    print(f"wall time {total:.2f} s (simulate {figures['simulate_seconds']} s, "
          f"write {figures['write_seconds']} s), {figures['events_per_second']:,} events/s")
    print(f"parquet {size_mib:.1f} MiB, peak RSS {figures['peak_rss_mib']:,} MiB")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()

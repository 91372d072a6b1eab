"""Run every benchmark at three sizes and write ``results/latest.json`` and ``latest.md``.

    python benchmarks/run_all.py            # 100, 1,000 and 10,000 customers x 365 days
    python benchmarks/run_all.py --sizes 100 1000

About 10^5, 10^6 and 10^7 events. Each phase runs in its own process (wall time, peak memory):
simulate, ingest, build (DuckDB and Spark), historical retrieval of 100,000 entity rows with this
project's offline store, Feast's duckdb, Spark and default file (Dask) stores on the same
tables (and this store's entity-less retrieval of 30 days), training, online scoring in
process, and over HTTP with 50 concurrent clients. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import run_phase

HERE = Path(__file__).resolve().parent
FEATURES = str(HERE / "bench_features.py")


def machine() -> dict:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "cpu": _cpu_model(), "memory_gib": round(memory, 1),
            "python": platform.python_version(),
            **{name: version(name) for name in ("duckdb", "feast", "scikit-learn", "pyspark")},
            "date": datetime.now(UTC).strftime("%Y-%m-%d")}


def _cpu_model() -> str | None:
    """The processor's name and clock as Linux reports them: runs on machines of the same kind
    differ by up to 2x (simulate at 10^8 events: 128 s on one, 190 s on another)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in info.splitlines()[:30] if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return f"{fields.get('model name', '?')}, {fields.get('cpu MHz', '?')} MHz"


def run_size(customers: int, work: Path, entity_rows: int) -> list[dict]:
    common = ["--workdir", str(work)]
    phases = [
        ["simulate", *common, "--customers", str(customers), "--days", "365"],
        ["ingest", *common], ["build", *common], ["build", *common, "--engine", "spark"],
        ["retrieve", *common, "--entity-rows", str(entity_rows)],
        ["retrieve", *common, "--entity-rows", str(entity_rows), "--store", "duckdb"],
        ["retrieve", *common, "--entity-rows", str(entity_rows), "--store", "duckdb-asof-range"],
        ["retrieve", *common, "--entity-rows", str(entity_rows), "--store", "spark"],
        ["retrieve", *common, "--entity-rows", str(entity_rows), "--store", "file"],
        ["train", *common], ["online", *common],
    ]
    results = []
    for phase in phases:
        result = run_phase(FEATURES, *phase)
        print(json.dumps({"customers": customers, **result}), flush=True)
        results.append(result)
    http = subprocess.run([sys.executable, str(HERE / "bench_http.py"), "--repo",
                           str(work / "feature_repo"), "--requests", "1000"],
                          capture_output=True, text=True)
    lines = http.stdout.strip().splitlines()
    results.append(json.loads(lines[-1]) if http.returncode == 0 and lines
                   else {"phase": "http_score", "error": http.stderr.strip()[-300:]})
    print(json.dumps({"customers": customers, **results[-1]}), flush=True)
    return results


def markdown(runs: dict[int, list[dict]], about: dict) -> str:
    def cell(result: dict) -> str:
        if "error" in result:
            return "error"
        phase = result["phase"]
        if phase == "online":
            text = (f"1: p50 {result['one_p50_ms']} ms / p99 {result['one_p99_ms']} ms; "
                    f"{result['batch']}: {result['batch_ms']} ms")
            if "batch_read_ms" in result:
                text += f" (online store read {result['batch_read_ms']} ms)"
            return text
        if phase == "http_score":
            return (f"{result['concurrency']} clients ({result.get('client', 'httpx')}): "
                    f"p50 {result['p50_ms']} ms / p99 {result['p99_ms']} ms, "
                    f"{result['throughput_rps']} req/s")
        text = f"{result['seconds']} s, {result.get('peak_rss_mib', '?')} MiB"
        if "jvm_peak_rss_mib" in result:
            text += f" + JVM {result['jvm_peak_rss_mib']} MiB"
        if phase.startswith("retrieve") and "entity_rows" in result:
            text += f", {result['rows_returned']:,}/{result['entity_rows']:,} rows"
        elif phase.startswith("retrieve"):
            text += f", {result['rows_returned']:,} rows of {result['days']} days"
        if phase == "train":
            text += f", AUC {result['roc_auc']} (LR {result['baseline_lr_auc']})"
        if phase in ("simulate", "ingest"):
            text += f", {result['events']:,} events"
        return text

    sizes = sorted(runs)
    names = [r["phase"] for r in runs[sizes[0]]]
    lines = [f"Machine: {about['cpus']} CPUs, {about['memory_gib']} GiB, Python "
             f"{about['python']}, DuckDB {about['duckdb']}, Feast {about['feast']}, "
             f"scikit-learn {about['scikit-learn']}, PySpark {about.get('pyspark', '-')}; "
             f"{about['date']}.", "",
             "| phase | " + " | ".join(f"{n:,} customers" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for i, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(cell(runs[n][i]) for n in sizes) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/usage-features-bench"))
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    runs = {n: run_size(n, args.workdir / str(n), args.entity_rows) for n in args.sizes}
    about = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps({"machine": about, "runs": runs},
                                                     indent=1))
    (args.out / "latest.md").write_text(markdown(runs, about))
    print(markdown(runs, about))


if __name__ == "__main__":
    main()

"""Train as bench_model does and keep train's validation rows (with the shipped model's scores).

    python benchmarks/_ceiling_prepare.py --customers 2000 --seed 0 --mechanism default --out DIR

Writes ``DIR/{mechanism}_{seed}.parquet``: train's validation reference (customer_id,
event_timestamp, churn_probability) plus the horizon, for bench_ceiling_likelihood.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def prepare(customers: int, seed: int, days: int, mechanism: str, out: Path) -> Path:
    import pandas as pd
    from bench_model import simulated_repo

    from usage_features.features.build import build_features
    from usage_features.features.store import apply_definitions
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.service_layer.train import TrainConfig, train
    from usage_features.training.report import REFERENCE_FILE

    clock = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        repo, paths, _, (events_path, customers_path) = simulated_repo(
            Path(scratch), customers, seed, days, mechanism)
        ingest_files([events_path], paths)
        load_customers(customers_path, paths)
        build_features(paths)
        apply_definitions(repo)
        result = train(TrainConfig(repo=repo))
        reference = pd.read_parquet(result.report_dir / REFERENCE_FILE)
        metrics = pd.read_csv(result.report_dir / "metrics.csv")
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{mechanism}_{customers}_{seed}.parquet"
    reference[["customer_id", "event_timestamp", "churn_probability"]].to_parquet(target)
    meta = {"customers": customers, "seed": seed, "days": days, "mechanism": mechanism,
            "horizon_days": int(result.model.metadata.horizon_days),
            "validation_positives": int(result.counts["validation_positives"]),
            "metrics": metrics.to_dict(orient="records"),
            "seconds": round(time.perf_counter() - clock, 1)}
    target.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--mechanism", default="default", choices=("default", "gradual"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(prepare(args.customers, args.seed, args.days, args.mechanism, args.out))


if __name__ == "__main__":
    main()

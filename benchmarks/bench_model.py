"""Benchmark: model quality against the baselines and the simulator's oracle, over seeds.

    nice -n 5 python benchmarks/bench_model.py                      # 1,500 and 10,000 x 3 seeds
    python benchmarks/bench_model.py --sizes 1500 --seeds 0 --name model_quick
    python benchmarks/bench_model.py --sizes 3000 --mechanism gradual --name ceiling_gradual

For each size and seed, in a child process: simulate (365 days), ingest, load the customers,
build (+ feast apply) and train with the project's own train path (as ``usage-features train``
and the demo do). Then, on the validation rows train scored (its ``validation_reference``
file), the oracle (:mod:`usage_features.simulation.oracle`, from the hidden state) is scored
beside every row of the metrics table train wrote (read as it is: model, baselines, whatever
train evaluates), and so is the onset oracle (``onset_probability``: it knows only when each
customer's decline began). ``--mechanism gradual`` simulates the second churn mechanism.
``--drop-each F1,F2`` also refits the model without each named feature on the same rows
(feature selection). Writes ``benchmarks/results/NAME.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Delays (days) of the late onset oracles: how the ceiling falls with a detector's delay.
ONSET_DELAYS = (7, 14, 28)
sys.path.insert(0, str(ROOT))


def _labels(customers, rows, horizon_days: int):
    """churned within (t, t + horizon] for ``customer_id, event_timestamp`` rows."""
    import pandas as pd

    churned = rows.customer_id.map(customers.set_index("customer_id").churned_at)
    t = rows.event_timestamp
    return ((churned > t) & (churned <= t + pd.Timedelta(days=horizon_days))).to_numpy(int)


def simulated_repo(scratch: Path, customers: int, seed: int, days: int, mechanism: str):
    """A new feature repo under ``scratch``, its paths, the simulation (365-day runs of the
    benchmarks) and its written (events, customers) files."""
    from usage_features.config import RepoPaths
    from usage_features.service_layer.demo import new_feature_repo
    from usage_features.simulation import SimulationConfig, simulate, write_simulation

    repo = new_feature_repo(ROOT / "feature_repo", scratch / "repo")
    sim = simulate(SimulationConfig(customers=customers, days=days, seed=seed,
                                    mechanism=mechanism))
    return repo, RepoPaths(repo), sim, write_simulation(sim, scratch / "raw")


def run_one(customers: int, seed: int, days: int, drop_each: list[str],
            mechanism: str = "default") -> dict:
    import pandas as pd

    from usage_features.features.build import build_features
    from usage_features.features.store import apply_definitions
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.service_layer.train import TrainConfig, train
    from usage_features.simulation.oracle import onset_for_rows, oracle_for_rows
    from usage_features.training import evaluate
    from usage_features.training.report import REFERENCE_FILE

    seconds = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 1)
        clock = now

    with tempfile.TemporaryDirectory() as scratch:
        repo, paths, sim, (events_path, customers_path) = simulated_repo(
            Path(scratch), customers, seed, days, mechanism)
        lap("simulate")
        ingest_files([events_path], paths)
        load_customers(customers_path, paths)
        lap("ingest")
        build_features(paths)
        apply_definitions(repo)
        lap("build")
        result = train(TrainConfig(repo=repo))
        lap("train")
        table = pd.read_csv(result.report_dir / "metrics.csv")
        reference = pd.read_parquet(result.report_dir / REFERENCE_FILE)
        horizon = result.model.metadata.horizon_days
        y = _labels(sim.customers.to_pandas(), reference, horizon)
        if int(y.sum()) != result.counts["validation_positives"] or len(y) != len(reference):
            raise RuntimeError("the validation rows' labels differ from train's")
        name_column = table.columns[0]
        scores = {str(row[name_column]): {"roc_auc": float(row["roc_auc"]),
                                          "pr_auc": float(row["pr_auc"])}
                  for _, row in table.iterrows()}
        shipped = evaluate.metrics(y, reference.churn_probability.to_numpy())
        scores["shipped (recomputed)"] = {k: shipped[k] for k in ("roc_auc", "pr_auc")}
        oracle = evaluate.metrics(y, oracle_for_rows(sim.hidden, reference, horizon))
        scores["oracle"] = {k: oracle[k] for k in ("roc_auc", "pr_auc")}
        onset = evaluate.metrics(y, onset_for_rows(sim.hidden, reference, horizon))
        scores["onset oracle"] = {k: onset[k] for k in ("roc_auc", "pr_auc")}
        for delay in ONSET_DELAYS:  # the same oracle seeing each decline that many days late
            late = evaluate.metrics(y, onset_for_rows(sim.hidden, reference, horizon, delay))
            scores[f"onset oracle, {delay} days late"] = {k: late[k] for k in ("roc_auc",
                                                                                "pr_auc")}
        dropped = _drop_each(repo, horizon, drop_each) if drop_each else {}
        lap("score")
    return {"customers": customers, "seed": seed, "days": days, "mechanism": mechanism,
            "events": sim.events.num_rows,
            "validation_rows": len(y), "validation_positives": int(y.sum()),
            "scores": scores, "drop_each": dropped, "seconds": seconds}


def _drop_each(repo: Path, horizon: int, features: list[str]) -> dict:
    """Validation ROC/PR AUC of the model refitted without each feature (same rows, split)."""
    from usage_features.features.retrieval import served_feature_names
    from usage_features.service_layer.train import TrainConfig, training_frame
    from usage_features.training import evaluate
    from usage_features.training.estimators import churn_classifier
    from usage_features.training.labels import time_split

    config = TrainConfig(repo=repo)
    frame = training_frame(config)
    train_rows, validate, _ = time_split(frame, horizon, config.validation_share)
    served = served_feature_names()
    out = {}
    for name in ["(none)", *features]:
        kept = [f for f in served if f != name and (name == "(none)" or name in served)]
        if name != "(none)" and name not in served:
            continue
        y = train_rows.label.to_numpy()
        # sized for the rows as train sizes its boosted candidate
        model = churn_classifier(kept, config.random_state, rows=len(y),
                                 positives=int(y.sum())).fit(train_rows, y)
        m = evaluate.metrics(validate.label, model.predict_proba(validate)[:, 1])
        out[name] = {"roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"]}
    return out


def _mean_sd(values: list[float]) -> tuple[float, float]:
    import statistics

    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs: list[dict]) -> str:
    lines = []
    for size in sorted({r["customers"] for r in runs}):
        group = [r for r in runs if r["customers"] == size and "scores" in r]
        if not group:
            continue
        seeds = ", ".join(str(r["seed"]) for r in group)
        rows = sum(r["validation_rows"] for r in group) / len(group)
        positives = sum(r["validation_positives"] for r in group) / len(group)
        lines += [f"### {size:,} customers (seeds {seeds}; about {rows:,.0f} validation rows, "
                  f"{positives:,.0f} churners per seed)", "",
                  "| scorer | ROC AUC mean ± sd | PR AUC mean ± sd | per seed (ROC / PR) |",
                  "|---|---|---|---|"]
        for name in group[0]["scores"]:
            roc = [r["scores"][name]["roc_auc"] for r in group if name in r["scores"]]
            pr = [r["scores"][name]["pr_auc"] for r in group if name in r["scores"]]
            per_seed = "; ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(roc, pr))
            lines.append(f"| {name} | {_mean_sd(roc)[0]:.4f} ± {_mean_sd(roc)[1]:.4f} | "
                         f"{_mean_sd(pr)[0]:.4f} ± {_mean_sd(pr)[1]:.4f} | {per_seed} |")
        for oracle in ("oracle", "onset oracle"):
            for metric in ("roc_auc", "pr_auc"):
                gap = [r["scores"][oracle][metric] - r["scores"]["shipped (recomputed)"][metric]
                       for r in group if oracle in r["scores"]]
                if not gap:
                    continue
                mean, sd = _mean_sd(gap)
                lines.append(f"\nGap {oracle} - shipped model, {metric}: {mean:.4f} ± {sd:.4f} "
                             f"(per seed {', '.join(f'{g:.4f}' for g in gap)})")
        if group[0].get("drop_each"):
            lines += ["", "Refit without one feature (same rows; change vs all features):", "",
                      "| dropped | ROC AUC change mean ± sd | PR AUC change mean ± sd |",
                      "|---|---|---|"]
            for name in group[0]["drop_each"]:
                if name == "(none)":
                    continue
                d_roc = [r["drop_each"][name]["roc_auc"] - r["drop_each"]["(none)"]["roc_auc"]
                         for r in group]
                d_pr = [r["drop_each"][name]["pr_auc"] - r["drop_each"]["(none)"]["pr_auc"]
                        for r in group]
                lines.append(f"| {name} | {_mean_sd(d_roc)[0]:+.4f} ± {_mean_sd(d_roc)[1]:.4f}"
                             f" | {_mean_sd(d_pr)[0]:+.4f} ± {_mean_sd(d_pr)[1]:.4f} |")
        secs = {k: _mean_sd([r["seconds"][k] for r in group])[0] for k in group[0]["seconds"]}
        lines += ["", "Mean seconds per run: " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                           secs.items()), ""]
    return "\n".join(lines)


def compare(before: list[dict], after: list[dict]) -> str:
    """Shipped-model ROC/PR AUC and the oracle gap, before vs after, same sizes and seeds."""
    lines = ["| customers | metric | before mean ± sd | after mean ± sd | oracle | "
             "gap before | gap after | gap closed |", "|---|---|---|---|---|---|---|---|"]
    for size in sorted({r["customers"] for r in after if "scores" in r}):
        pairs = [(b, a) for a in after for b in before if "scores" in a and "scores" in b
                 and a["customers"] == b["customers"] == size and a["seed"] == b["seed"]]
        for metric in ("roc_auc", "pr_auc"):
            def shipped(run: dict, metric: str = metric) -> float:
                return run["scores"]["shipped (recomputed)"][metric]

            def gap(run: dict, metric: str = metric) -> float:
                return run["scores"]["oracle"][metric] - shipped(run, metric)

            b_mean, b_sd = _mean_sd([shipped(b) for b, _ in pairs])
            a_mean, a_sd = _mean_sd([shipped(a) for _, a in pairs])
            oracle = _mean_sd([a["scores"]["oracle"][metric] for _, a in pairs])[0]
            g_b, g_a = (_mean_sd([gap(b) for b, _ in pairs])[0],
                        _mean_sd([gap(a) for _, a in pairs])[0])
            lines.append(f"| {size:,} ({len(pairs)} seeds) | {metric} | {b_mean:.4f} ± {b_sd:.4f}"
                         f" | {a_mean:.4f} ± {a_sd:.4f} | {oracle:.4f} | {g_b:.4f} | {g_a:.4f} | "
                         f"{(g_b - g_a) / g_b:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("one", help="one size and seed, in this process (prints JSON)")
    one.add_argument("--customers", type=int, required=True)
    one.add_argument("--seed", type=int, required=True)
    versus = sub.add_parser("compare", help="before.json after.json -> a Markdown table")
    versus.add_argument("before", type=Path)
    versus.add_argument("after", type=Path)
    for p in (parser, one):
        p.add_argument("--days", type=int, default=365)
        p.add_argument("--mechanism", default="default", choices=("default", "gradual"))
        p.add_argument("--drop-each", default="", help="comma-separated served features")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1500, 10_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--name", default="model", help="results/NAME.md and NAME.json")
    args = parser.parse_args(argv)
    if args.command == "compare":
        print(compare(json.loads(args.before.read_text()), json.loads(args.after.read_text())))
        return
    drop = [f for f in args.drop_each.split(",") if f]
    if args.command == "one":
        print(json.dumps(run_one(args.customers, args.seed, args.days, drop, args.mechanism)))
        return
    runs = []
    for size in args.sizes:
        for seed in args.seeds:
            command = [sys.executable, __file__, "one", "--customers", str(size), "--seed",
                       str(seed), "--days", str(args.days), "--drop-each", args.drop_each,
                       "--mechanism", args.mechanism]
            load = round(os.getloadavg()[0], 2)  # the machine's load as the run starts
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                runs.append({"customers": size, "seed": seed, "load_before": load,
                             "error": done.stderr.strip().splitlines()[-1:]})
            else:
                runs.append({**json.loads(done.stdout.strip().splitlines()[-1]),
                             "load_before": load})
            print(json.dumps(runs[-1]), flush=True)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / f"{args.name}.json").write_text(json.dumps(runs, indent=1) + "\n")
    loads = [r["load_before"] for r in runs]
    header = (f"# Model quality: shipped model vs baselines vs oracle\n\n"
              f"`python benchmarks/bench_model.py --sizes {' '.join(map(str, args.sizes))} "
              f"--seeds {' '.join(map(str, args.seeds))} --mechanism {args.mechanism}` "
              f"({args.days} days simulated, the {args.mechanism} churn mechanism; "
              "validation rows as train splits them; 1-minute load average before the runs "
              f"{min(loads):.2f}-{max(loads):.2f}).\n\n")
    errors = [r for r in runs if "error" in r]
    tail = "".join(f"\nRun failed: {r['customers']} customers, seed {r['seed']}: {r['error']}\n"
                   for r in errors)
    (results / f"{args.name}.md").write_text(header + summarize(runs) + tail)
    print(header + summarize(runs) + tail)


if __name__ == "__main__":
    main()

"""Benchmark: ingest, feature build and historical retrieval on simulated data.

    python benchmarks/bench_features.py --customers 10000 --days 365 --entity-rows 100000

Each phase runs in its own process so its peak memory is its own. Retrieval is measured
through ``churn_model_v1`` with this project's DuckDB ASOF offline store and, on the same
tables, with Feast's built-in ``duckdb`` store and its default ``file`` (Dask) store
(``--skip-dask`` to leave that one out); beside them, this store's entity-less retrieval of the
last 30 days' feature rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import report, run_phase

ROOT = Path(__file__).resolve().parents[1]


def phase_simulate(work: Path, customers: int, days: int, seed: int) -> None:
    from usage_features.simulation import SimulationConfig, simulate_to_files

    started = time.perf_counter()
    written = simulate_to_files(SimulationConfig(customers=customers, days=days, seed=seed),
                                work / "raw")
    report(phase="simulate", events=written.events,
           seconds=round(time.perf_counter() - started, 2))


def phase_ingest(work: Path) -> None:
    from usage_features.config import RepoPaths
    from usage_features.ingestion import ingest_files
    from usage_features.ingestion.customers import load_customers
    from usage_features.service_layer.demo import new_feature_repo

    repo = work / "feature_repo"
    shutil.rmtree(repo, ignore_errors=True)
    new_feature_repo(ROOT / "feature_repo", repo)
    started = time.perf_counter()
    summary = ingest_files([work / "raw" / "events.parquet"], RepoPaths(repo))
    seconds = time.perf_counter() - started
    load_customers(work / "raw" / "customers.parquet", RepoPaths(repo))
    report(phase="ingest", events=summary.read, accepted=summary.accepted,
           seconds=round(seconds, 2), events_per_second=round(summary.read / seconds))


def phase_build(work: Path, engine: str) -> None:
    """A full build; the Spark one in a copy of the repo with the same event log."""
    from usage_features.config import RepoPaths
    from usage_features.features.build import build_features
    from usage_features.features.store import apply_definitions

    repo = _engine_repo(work, engine)
    started = time.perf_counter()
    summary = build_features(RepoPaths(repo), engine=engine)
    seconds = time.perf_counter() - started
    apply_definitions(repo, SPARK_CONFIG if engine == "spark" else "feature_store.yaml")
    report(phase="build" if engine == "duckdb" else f"build[{engine}]", seconds=round(seconds, 2),
           feature_rows=summary.feature_rows, customers=summary.customers,
           customer_days=summary.customer_days, **_jvm_peak())


SPARK_CONFIG = "feature_store.spark.yaml"


def _engine_repo(work: Path, engine: str) -> Path:
    repo = work / "feature_repo"
    if engine == "duckdb":
        return repo
    copy = work / f"feature_repo_{engine}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns("features", "registry*.db",
                                                             "online_store.db"))
    return copy


def _jvm_peak() -> dict:
    """Peak resident memory of the Spark JVM (a child process: not in the Python figure)."""
    try:
        from pyspark import SparkContext
    except ImportError:
        return {}
    context = SparkContext._active_spark_context
    if context is None:
        return {}
    pid = context._gateway.proc.pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return {"jvm_peak_rss_mib": round(int(line.split()[1]) / 1024)}
    return {}


#: ``--store`` -> the ``offline_store.type`` it swaps into the repo's config for the run.
SWAPPED_STORES = {"file": "file", "duckdb": "duckdb"}
OUR_STORE = "usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore"


def phase_incremental(work: Path) -> None:
    """The daily loop at scale: a repo built on all but the last day's events, then given that
    day and built incrementally, must hold exactly the tables a full build of every event gives.

    Needs the ``build`` phase's repo (the full build). Reports the incremental build's time and
    the number of rows that differ in each table (0 and 0, or the phase fails).
    """
    from usage_features.adapters.duckdb_connection import connect, parquet_list
    from usage_features.config import RepoPaths
    from usage_features.features.build import build_features
    from usage_features.ingestion import ingest_files
    from usage_features.service_layer.demo import new_feature_repo

    full, repo = RepoPaths(work / "feature_repo"), work / "feature_repo_incremental"
    shutil.rmtree(repo, ignore_errors=True)
    new_feature_repo(ROOT / "feature_repo", repo)
    con = connect(spill_to=work / ".spill")
    events = parquet_list([work / "raw" / "events.parquet"])
    (last_day,) = con.execute(f"SELECT max(CAST(timestamp AS DATE)) FROM read_parquet({events})"
                              ).fetchone()
    split = work / "split"
    split.mkdir(exist_ok=True)
    for name, where in (("before", "<"), ("last_day", ">=")):
        con.execute(f"COPY (SELECT * FROM read_parquet({events}) WHERE CAST(timestamp AS DATE) "
                    f"{where} DATE '{last_day}') TO '{split / name}.parquet' (FORMAT parquet)")
    paths = RepoPaths(repo)
    ingest_files([split / "before.parquet"], paths)
    build_features(paths)
    ingest_files([split / "last_day.parquet"], paths)
    started = time.perf_counter()
    summary = build_features(paths)
    seconds = time.perf_counter() - started
    shutil.rmtree(split)
    differing = {}
    for table in ("customer_usage", "daily"):
        a, b = (getattr(p, table) for p in (full, paths))
        files = [parquet_list(sorted(t.glob("*.parquet")) if t.is_dir() else [t]) for t in (a, b)]
        (differing[table],) = con.execute(
            f"SELECT count(*) FROM ((SELECT * FROM read_parquet({files[0]}) EXCEPT ALL "
            f"SELECT * FROM read_parquet({files[1]})) UNION ALL (SELECT * FROM "
            f"read_parquet({files[1]}) EXCEPT ALL SELECT * FROM read_parquet({files[0]})))"
        ).fetchone()
    report(phase="incremental", last_day=str(last_day), seconds=round(seconds, 2),
           customers_recomputed=summary.customers_recomputed,
           months_rewritten=len(summary.months_rewritten),
           differing_usage_rows=differing["customer_usage"],
           differing_daily_rows=differing["daily"])
    if any(differing.values()):
        raise SystemExit(f"incremental build differs from the full build: {differing}")


def phase_retrieve(work: Path, rows: int, store_type: str) -> None:
    import os

    from usage_features.features.store import SERVICE_NAME, open_store

    repo = work / ("feature_repo_spark" if store_type == "spark" else "feature_repo")
    config = SPARK_CONFIG if store_type == "spark" else "feature_store.yaml"
    if store_type in SWAPPED_STORES:
        yaml = (repo / "feature_store.yaml").read_text()
        (repo / "feature_store.yaml").write_text(yaml.replace(
            OUR_STORE, SWAPPED_STORES[store_type]))
        # Feast's duckdb store resolves relative source paths against the working directory
        os.chdir(repo)
    if store_type == "duckdb":
        _duckdb_store_reads_directories()
    if store_type == "duckdb-asof-range":
        return _retrieve_range(repo)
    entity = _entity_rows(work, rows)
    if store_type == "floor":
        return _retrieve_floor(repo, entity)
    try:
        store = open_store(repo, config)
        started, cpu = time.perf_counter(), time.process_time()
        frame = store.get_historical_features(
            entity_df=entity, features=store.get_feature_service(SERVICE_NAME)).to_df()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        if store_type in SWAPPED_STORES:
            (repo / "feature_store.yaml").write_text(yaml)
    # CPU seconds of every thread: on a shared machine, the part of the wall time that is ours
    report(phase=f"retrieve[{store_type}]", entity_rows=rows, rows_returned=len(frame),
           seconds=round(seconds, 2), cpu_seconds=round(cpu, 2), **_jvm_peak())


def _entity_rows(work: Path, rows: int):
    """``rows`` random (customer, time) rows, each time between its customer's signup and now."""
    import numpy as np
    import pandas as pd

    customers = pd.read_parquet(work / "raw" / "customers.parquet")
    rng = np.random.default_rng(0)
    pick = customers.sample(rows, replace=True, random_state=1).reset_index(drop=True)
    span = (pd.Timestamp.now(tz="UTC") - pick.signup_at).dt.total_seconds().clip(lower=1)
    return pd.DataFrame({
        "customer_id": pick.customer_id,
        # to the microsecond: Feast's duckdb store refuses nanoseconds
        "event_timestamp": (pick.signup_at + pd.to_timedelta(rng.random(rows) * span, "s")
                            ).dt.floor("us"),
    })


def _retrieve_floor(repo: Path, entity) -> None:
    """The floor: every feature row of the usage table in memory, presorted by (customer,
    time) (not timed), then each entity row's latest row at or before its time by one binary
    search, and its served columns taken (timed). No checks, no Feast, no request-time
    features: what no store can beat."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from usage_features.config import RepoPaths

    table = pa.concat_tables((pq.read_table(p) for p in
                              sorted(RepoPaths(repo).customer_usage.glob("*.parquet"))),
                             promote_options="permissive")
    table = table.sort_by([("customer_id", "ascending"), ("feature_timestamp", "ascending")])
    ids, code = np.unique(table.column("customer_id").to_numpy(zero_copy_only=False),
                          return_inverse=True)
    times = table.column("feature_timestamp").cast(pa.int64()).to_numpy()
    keys = code.astype(np.int64) << 42 | (times // 1_000_000 - 1_500_000_000)
    columns = {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names
               if n not in ("customer_id", "feature_timestamp", "day")}
    started, cpu = time.perf_counter(), time.process_time()
    where = np.searchsorted(ids, entity.customer_id.to_numpy())
    known = ids[np.minimum(where, len(ids) - 1)] == entity.customer_id.to_numpy()
    seconds = entity.event_timestamp.astype("int64").to_numpy() // 10**9 - 1_500_000_000
    at = np.searchsorted(keys, where.astype(np.int64) << 42 | seconds, side="right") - 1
    found = known & (at >= 0) & (code[np.maximum(at, 0)] == where)
    taken = {n: np.where(found, v[np.maximum(at, 0)], np.nan) for n, v in columns.items()
             if v.dtype.kind in "fiub"}
    seconds_taken, cpu = time.perf_counter() - started, time.process_time() - cpu
    report(phase="retrieve[floor: in-memory binary search]", entity_rows=len(entity),
           feature_rows=table.num_rows, columns=len(taken), seconds=round(seconds_taken, 3),
           cpu_seconds=round(cpu, 3))


def _duckdb_store_reads_directories() -> None:
    """Feast's duckdb store reads a FileSource only when its path ends in ``.parquet``; the
    feature table is a directory of month files: read it as ``DIR/*.parquet``."""
    import ibis
    from feast.infra.offline_stores import duckdb as feast_duckdb

    original = feast_duckdb._read_data_source

    def read(data_source, repo_path):
        path = Path(repo_path) / data_source.path
        if path.is_dir():
            return ibis.read_parquet(str(path / "*.parquet"))
        return original(data_source, repo_path)

    feast_duckdb._read_data_source = read


def _retrieve_range(repo: Path, days: int = 30) -> None:
    """Feast's non-entity mode: every feature row of the last ``days`` days, no entity frame."""
    from datetime import timedelta

    import pandas as pd

    from usage_features.config import RepoPaths
    from usage_features.features.store import open_store

    store = open_store(repo)
    view = store.get_feature_view("customer_usage")
    stamp = view.batch_source.timestamp_field
    end = pd.read_parquet(RepoPaths(repo).customer_usage,
                          columns=[stamp])[stamp].max().to_pydatetime()
    started = time.perf_counter()
    frame = store.get_historical_features(
        features=[f"customer_usage:{f.name}" for f in view.features],
        start_date=end - timedelta(days=days), end_date=end).to_df()
    report(phase="retrieve[duckdb-asof-range]", days=days, rows_returned=len(frame),
           seconds=round(time.perf_counter() - started, 2))


def phase_train(work: Path) -> None:
    from usage_features.service_layer.train import TrainConfig, train

    started = time.perf_counter()
    result = train(TrainConfig(repo=work / "feature_repo", importance_repeats=1))
    metrics = result.model.metadata.metrics["model"]
    report(phase="train", rows=result.counts["train"] + result.counts["validation"],
           seconds=round(time.perf_counter() - started, 2),
           roc_auc=round(metrics["roc_auc"], 4),
           baseline_lr_auc=round(result.model.metadata.metrics[
               "logistic regression"]["roc_auc"], 4))


def phase_online(work: Path, singles: int = 2000, batches: int = 30) -> None:
    """Materialize at the data's end, then time the in-process scorer.

    One customer at a time (p50, p99 over ``singles`` calls after a warm-up), and 1,000
    customers in one call (median of ``batches``), with the part of that spent reading the
    online store (``read_online``).
    """
    import numpy as np
    import pandas as pd

    from usage_features.config import RepoPaths
    from usage_features.features.retrieval import online_refs, read_online
    from usage_features.service_layer.bootstrap import bootstrap
    from usage_features.service_layer.materialize import materialize
    from usage_features.service_layer.train import data_end

    repo = work / "feature_repo"
    end = pd.Timestamp(data_end(RepoPaths(repo))).ceil("D").to_pydatetime()
    started = time.perf_counter()
    materialize(repo, end=end)
    materialize_seconds = time.perf_counter() - started
    scorer = bootstrap(repo).scorer
    ids = pd.read_parquet(work / "raw" / "customers.parquet").customer_id.tolist()
    for i in range(50):
        scorer.score([ids[i % len(ids)]], end)
    one = []
    for i in range(singles):
        t = time.perf_counter()
        scorer.score([ids[i % len(ids)]], end)
        one.append(time.perf_counter() - t)
    batch = ids[:1000]
    scorer.score(batch, end)
    refs = online_refs(scorer.store)  # resolved once, as the scorer does
    many, reads = [], []
    for _ in range(batches):
        t = time.perf_counter()
        scorer.score(batch, end)
        many.append(time.perf_counter() - t)
        t = time.perf_counter()
        read_online(scorer.store, batch, end, refs)
        reads.append(time.perf_counter() - t)
    report(phase="online", materialize_seconds=round(materialize_seconds, 2),
           one_p50_ms=round(float(np.percentile(one, 50)) * 1e3, 2),
           one_p99_ms=round(float(np.percentile(one, 99)) * 1e3, 2),
           batch=len(batch), batch_ms=round(float(np.median(many)) * 1e3, 1),
           batch_read_ms=round(float(np.median(reads)) * 1e3, 1),
           **_model_cpu(scorer.model, scorer.store, batch, end))


def _model_cpu(model, store, ids, end) -> dict:
    """CPU time (not wall: steady on a busy machine) of the model's part of a score: the
    30-day probability (``predict_matrix``) and the longer horizons (``predict_horizons``; none
    for a model without them), one row (median of 2,000 calls) and 1,000 rows (median of 30)."""
    import numpy as np

    from usage_features.features.retrieval import read_online

    matrix = read_online(store, ids, end, None).matrix(model.metadata.features)

    def cpu(call, rows, repeats) -> float:
        times = []
        for _ in range(repeats):
            t = time.process_time()
            call(rows)
            times.append(time.process_time() - t)
        return float(np.median(times))

    out = {}
    for name, rows, repeats in (("one", matrix[:1], 2000), ("batch", matrix, 30)):
        base = model.predict_matrix(rows)
        out[f"{name}_classifier_cpu_us"] = round(cpu(model.predict_matrix, rows, repeats) * 1e6)
        if model.horizons is not None:
            out[f"{name}_horizons_cpu_us"] = round(
                cpu(lambda r, b=base: model.predict_horizons(r, b), rows, repeats) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", nargs="?", default="all")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/usage-features-bench"))
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--store", default="duckdb-asof")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    args = parser.parse_args()
    work = args.workdir
    if args.phase == "simulate":
        return phase_simulate(work, args.customers, args.days, args.seed)
    if args.phase == "ingest":
        return phase_ingest(work)
    if args.phase == "build":
        return phase_build(work, args.engine)
    if args.phase == "incremental":
        return phase_incremental(work)
    if args.phase == "retrieve":
        return phase_retrieve(work, args.entity_rows, args.store)
    if args.phase == "train":
        return phase_train(work)
    if args.phase == "online":
        return phase_online(work)
    work.mkdir(parents=True, exist_ok=True)
    script, common = __file__, ["--workdir", str(work)]
    phases = [
        ["simulate", *common, "--customers", str(args.customers), "--days", str(args.days),
         "--seed", str(args.seed)],
        ["ingest", *common],
        ["build", *common],
        ["retrieve", *common, "--entity-rows", str(args.entity_rows)],
    ]
    phases += [["retrieve", *common, "--entity-rows", str(args.entity_rows), "--store", store]
               for store in ("duckdb", "duckdb-asof-range")]
    if not args.skip_dask:
        phases.append(["retrieve", *common, "--entity-rows", str(args.entity_rows),
                       "--store", "file"])
    for phase in phases:
        print(json.dumps(run_phase(script, *phase)), flush=True)


if __name__ == "__main__":
    main()

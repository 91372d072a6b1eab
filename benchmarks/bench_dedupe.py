"""Duplicate detection: ingest of one day into event logs of growing size, before and after the
id index.

    python benchmarks/bench_dedupe.py                          # logs of 10^6 and 10^7 events
    python benchmarks/bench_dedupe.py --sizes 1000000 --day-rows 270000

For each size, a log of that many events (10,000 customers over 365 days, UUID ids, written by
one ingest) is made once; then, each in its own process on its own copy of that repo (wall time
and peak memory its own), the ingest of one new day of ``--day-rows`` rows, 1,000 of them
re-sent old events from random earlier days (half verbatim, half with another score):

- ``before``: the stored ids found as before the index, a read of every log file's ids
  (``read_parquet(every file) WHERE event_id IN (the input's ids)``, the code of
  ``ingest._classify`` until this change, patched back in);
- ``after``: through the id index (``adapters/event_index.py``), already up to date;
- ``after, first use``: the index deleted first (an existing repo's first ingest with this
  version: it is built from the whole log, then used);
- ``before, new ids only`` and ``after, new ids only``: a day of new ids only (no re-sent
  event: no stored row to read back).

The three must give the same summary (accepted, duplicates, conflicts). Writes
``results/dedupe.json`` and ``results/dedupe.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _measure import report, run_phase
from run_all import machine

HERE = Path(__file__).resolve().parent
RESENT = 1000
MODES = ("before", "after", "after, first use", "before, new ids only", "after, new ids only")


def make_log(work: Path, events: int, day_rows: int) -> None:
    """A repo whose log holds ``events`` events, and the new day's input file."""
    import duckdb

    from usage_features.config import RepoPaths
    from usage_features.ingestion import ingest_files

    work.mkdir(parents=True, exist_ok=True)
    types = "['login', 'dashboard_view', 'monitoring_run', 'alert_configured', 'report_export']"
    with duckdb.connect() as con:
        con.execute("SELECT setseed(0.5)")
        con.execute(f"""COPY (
            SELECT CAST(uuid() AS VARCHAR) AS event_id, 'c' || (i % 10000) AS customer_id,
                   TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_microseconds(
                       CAST(random() * 365 * 86400e6 AS BIGINT)) AS timestamp,
                   {types}[1 + CAST(floor(random() * 5) AS INTEGER)] AS event_type,
                   round(random(), 3) AS feature_adoption_score
            FROM range({events}) t(i))
            TO '{work / "history.parquet"}' (FORMAT parquet)""")
    started = time.perf_counter()
    repo = RepoPaths(work / "repo")
    summary = ingest_files([work / "history.parquet"], repo)
    print(f"log of {summary.accepted:,} events made in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    with duckdb.connect() as con:
        con.execute(f"""COPY (
            SELECT * FROM (
                SELECT CAST(uuid() AS VARCHAR) AS event_id, 'c' || (i % 10000) AS customer_id,
                       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_microseconds(
                           CAST(random() * 86400e6 AS BIGINT)) AS timestamp,
                       'login' AS event_type, 0.5 AS feature_adoption_score
                FROM range({day_rows - RESENT}) t(i)
                UNION ALL
                SELECT event_id, customer_id, timestamp, event_type,
                       CASE WHEN n % 2 = 0 THEN feature_adoption_score
                            WHEN feature_adoption_score < 0.5 THEN feature_adoption_score + 0.25
                            ELSE feature_adoption_score - 0.25 END
                FROM (SELECT *, row_number() OVER () AS n
                      FROM '{work / "history.parquet"}' USING SAMPLE {RESENT} ROWS))
            ORDER BY timestamp)
            TO '{work / "day.parquet"}' (FORMAT parquet)""")
        con.execute(f"""COPY (
            SELECT CAST(uuid() AS VARCHAR) AS event_id, 'c' || (i % 10000) AS customer_id,
                   TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_microseconds(
                       CAST(random() * 86400e6 AS BIGINT)) AS timestamp,
                   'login' AS event_type, 0.5 AS feature_adoption_score
            FROM range({day_rows}) t(i) ORDER BY timestamp)
            TO '{work / "day-new.parquet"}' (FORMAT parquet)""")


def scan_whole_log(con, log, index) -> None:
    """``stored`` as ingest found it before the index: every log file's ids read."""
    from usage_features.adapters.duckdb_connection import parquet_list, run
    from usage_features.ingestion.ingest import _COMPARED
    from usage_features.schema import EVENT_COLUMNS

    stored = (
        f"SELECT {_COMPARED} FROM staged WHERE false" if log.is_empty()
        else f"SELECT {', '.join(EVENT_COLUMNS)} "
        f"FROM read_parquet({parquet_list(log.files())}, "
        "hive_partitioning = false, union_by_name = true) "
        "WHERE event_id IN (SELECT event_id FROM staged WHERE reason IS NULL)"
    )
    run(con, f"CREATE TABLE stored AS {stored}")


def ingest_day(work: Path, mode: str) -> None:
    from usage_features.adapters.event_index import INDEX_DIR
    from usage_features.config import RepoPaths
    from usage_features.ingestion import ingest, ingest_files

    copy = work / f"copy-{mode.replace(' ', '-').replace(',', '')}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(work / "repo", copy)
    repo = RepoPaths(copy)
    day = work / ("day-new.parquet" if mode.endswith("new ids only") else "day.parquet")
    steps = {"find stored ids": 0.0, "index the new files": 0.0}
    find = scan_whole_log if mode.startswith("before") else ingest._stored_matches
    sync = ingest.EventIdIndex.sync

    inside = []

    def timed_find(con, log, index):
        started = time.perf_counter()
        inside.append(True)
        find(con, log, index)
        inside.pop()
        steps["find stored ids"] += time.perf_counter() - started

    def timed_sync(self, con, files):  # after the commit (the one in "find" is counted there)
        started = time.perf_counter()
        sync(self, con, files)
        if not inside:
            steps["index the new files"] += time.perf_counter() - started

    ingest._stored_matches = timed_find
    if mode.startswith("before"):
        ingest.EventIdIndex.sync = lambda self, con, files: None
    else:
        ingest.EventIdIndex.sync = timed_sync
    if mode == "after, first use":
        shutil.rmtree(repo.events / INDEX_DIR)
    started = time.perf_counter()
    summary = ingest_files([day], repo)
    seconds = round(time.perf_counter() - started, 2)
    shutil.rmtree(copy)
    report(phase=mode, seconds=seconds, **{k: round(v, 2) for k, v in steps.items()},
           accepted=summary.accepted,
           duplicates=summary.duplicates,
           conflicts=summary.rejected_by_reason.get("conflicting_event_id", 0))


def cell(r: dict) -> str:
    """Wall time and peak memory; for a day's ingest, the time of finding the stored ids and
    of indexing the new files."""
    if "error" in r:
        return "error: " + r["error"][:60]
    steps = (f" (find {r['find stored ids']} s, index {r['index the new files']} s)"
             if "find stored ids" in r else "")
    return f"{r['seconds']} s{steps}, {r['peak_rss_mib']:,} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", nargs="?", choices=["make", "day"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--day-rows", type=int, default=270_000)
    parser.add_argument("--workdir", type=Path, default=HERE / "work" / "dedupe")
    parser.add_argument("--events", type=int)
    parser.add_argument("--mode")
    args = parser.parse_args()
    if args.phase == "make":
        make_log(args.workdir, args.events, args.day_rows)
        report(phase="make")
        return
    if args.phase == "day":
        ingest_day(args.workdir, args.mode)
        return
    script, results = str(Path(__file__).resolve()), {}
    for size in args.sizes:
        work = args.workdir / str(size)
        shutil.rmtree(work, ignore_errors=True)
        made = run_phase(script, "make", "--workdir", str(work), "--events", str(size),
                         "--day-rows", str(args.day_rows))
        results[size] = {"make log": made}
        for mode in MODES:
            results[size][mode] = run_phase(script, "day", "--workdir", str(work),
                                            "--mode", mode)
            print(size, mode, results[size][mode], file=sys.stderr)
        shutil.rmtree(work)
    about = machine()
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "dedupe.json").write_text(json.dumps(
        {"machine": about, "day_rows": args.day_rows, "results": results}, indent=1))
    lines = [f"Machine: {about['cpus']} CPUs, {about['memory_gib']} GiB, DuckDB "
             f"{about['duckdb']}; {about['date']}. A day of {args.day_rows:,} rows "
             f"({RESENT:,} re-sent old events: half verbatim, half with another score).", "",
             "| log | make the log (one ingest) | before: every log file's ids read | "
             "after: the id index | after, first use (index built) | summary "
             "(accepted, duplicates, conflicts) | before, new ids only | after, new ids only |",
             "|---|---|---|---|---|---|---|---|"]
    for size, r in results.items():
        cells = [cell(r[m]) for m in ("make log", "before", "after", "after, first use")]
        summaries = {(r[m].get("accepted"), r[m].get("duplicates"), r[m].get("conflicts"))
                     for m in ("before", "after", "after, first use")}
        same = next(iter(summaries)) if len(summaries) == 1 else f"DIFFER: {summaries}"
        new = [cell(r[m]) for m in MODES[3:]]
        lines.append(f"| {size:,} events | " + " | ".join(cells) + f" | {same} | "
                     + " | ".join(new) + " |")
    (HERE / "results" / "dedupe.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

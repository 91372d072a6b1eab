"""``usage-features build``: the event log -> compact feature tables, incrementally.

The build remembers which event-log files it has folded in (``_build_state.json``). A rebuild:

1. finds the log files added since (none: nothing is written, nothing changes);
2. re-aggregates only the (customer, day) pairs those files touch, from the log partitions of
   those days, and swaps them into the daily table;
3. recomputes the feature rows of the touched customers from their daily rows, keeps only rows
   on or after each customer's first touched day + 1, and rewrites only the month files from
   the earliest such day on; every other row stays as it was.

A full build is the same path with every file new. It holds the repo's write lock, so it never
sees half an ingest.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

from usage_features.adapters.duckdb_connection import connect, copy_atomically, parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.adapters.row_sidecar import (
    has_current_sidecar,
    remove_sidecar,
    write_sidecar,
)
from usage_features.adapters.spark_session import repo_spark_conf
from usage_features.adapters.sql_engine import Engine, open_engine
from usage_features.config import RepoPaths
from usage_features.features.spec import EXACT_SCORE, FeatureSpec, feature_spec
from usage_features.features.sql import DIALECTS, daily_sql, features_sql
from usage_features.features.state import load_state, save_state
from usage_features.ingestion.settings import load_vocabulary
from usage_features.schema import CUSTOMER_SCHEMA

EPOCH = date(1970, 1, 1)


class NoEventsError(RuntimeError):
    """The event log is empty: there is nothing to build from."""


@dataclass
class BuildSummary:
    new_event_files: int = 0
    customers_recomputed: int = 0
    first_changed_day: str | None = None
    months_rewritten: list[str] = field(default_factory=list)
    feature_rows: int = 0
    customers: int = 0
    customer_days: int = 0
    profile_rows: int | None = None
    #: The event vocabulary changed since the last build: every table was rebuilt.
    vocabulary_changed: bool = False
    #: ``feast apply`` ran after the build (the definitions changed; see service_layer.build).
    definitions_applied: bool = False

    @property
    def changed(self) -> bool:
        return (bool(self.new_event_files) or self.profile_rows is not None
                or self.vocabulary_changed)

    def to_dict(self) -> dict:
        return {**asdict(self), "changed": self.changed}


def build_features(repo: RepoPaths, on_step: Callable[[str], None] | None = None,
                   engine: str = "duckdb", spark_master: str | None = None) -> BuildSummary:
    """Bring the feature tables up to date with the event log (and the customers table).

    ``engine``: ``duckdb`` (in process) or ``spark`` (configured by the repo's
    ``feature_store.spark.yaml``; see :mod:`usage_features.adapters.spark_session`). Both run
    the same SQL and write the same tables. ``spark_master`` (spark engine only) overrides the
    config's ``spark.master``.
    """
    if spark_master and engine != "spark":
        raise ValueError(f"spark_master is for the spark engine, not {engine!r}")
    step = on_step or (lambda _: None)
    log = EventLog(repo)
    with log.write_lock():
        files = {str(p.relative_to(log.root)): p for p in log.files()}
        if not files:
            raise NoEventsError(f"no events in {log.root}; run `usage-features ingest` first")
        state = load_state(repo)
        vocabulary = load_vocabulary(repo.repo)
        spec = feature_spec(vocabulary)
        summary = BuildSummary()
        built_with = state.get("vocabulary_sha256", feature_spec().vocabulary.sha256)
        if state["event_files"] and built_with != vocabulary.sha256:
            step("the event vocabulary changed (a schema change): rebuilding every feature table")
            _drop_feature_tables(repo)
            state["event_files"] = []
            summary.vocabulary_changed = True
        state["vocabulary_sha256"] = vocabulary.sha256
        new = sorted(set(files) - set(state["event_files"]))
        summary.new_event_files = len(new)
        conf = None
        if engine == "spark":
            conf = repo_spark_conf(repo.repo) | ({"spark.master": spark_master}
                                                 if spark_master else {})
        sql = open_engine(engine, conf, spill_to=repo.data / ".spill")
        try:
            if new:
                step(f"aggregating {len(new)} new event file(s) with {engine}")
                touched_days = _aggregate_touched(sql, repo, log, [files[n] for n in new],
                                                  spec, full=not state["event_files"])
                step(f"recomputing {touched_days} touched customer-day(s) with {engine}")
                _recompute(sql, repo, spec, summary)
            summary.profile_rows = _refresh_profile(repo, state)
            _table_stats(sql, repo, summary)
        finally:
            sql.close()
        # for `usage-features materialize`: the first day whose rows changed (a rewritten
        # profile from its first signup, so a newly loaded customer reaches the online store)
        changed = [summary.first_changed_day,
                   _first_signup_day(repo) if summary.profile_rows else None]
        if any(changed):
            pending = state.setdefault("unmaterialized_since", {})
            for config in repo.repo.glob("feature_store*.yaml"):
                pending[config.name] = min(filter(None, (pending.get(config.name), *changed)))
        state["event_files"] = sorted(files)
        save_state(repo, state)
    return summary


def _drop_feature_tables(repo: RepoPaths) -> None:
    """Remove the daily and feature tables (their columns follow the vocabulary)."""
    for month in repo.customer_usage.glob("*.parquet"):
        month.unlink()
        remove_sidecar(month)
    repo.daily.unlink(missing_ok=True)


def _aggregate_touched(sql: Engine, repo: RepoPaths, log: EventLog, new_files,
                       spec: FeatureSpec, full: bool) -> int:
    """Daily rows for every (customer, day) the new files touch, merged into ``daily``.

    A day's events all lie in its ``event_date`` partition, so the partitions are aggregated in
    batches of whole days (:func:`_day_batches`): each batch's groups are complete on their own.
    """
    names = ["customer_id", "day", *spec.daily]
    columns = ", ".join(names)
    dialect = DIALECTS[sql.dialect]
    day = dialect.day_of
    kept = ""
    if full:  # every pair is touched: every partition, once
        partitions = log.files()
    else:
        sql.create("touched", f"SELECT DISTINCT customer_id, {day('timestamp')} AS day "
                              f"FROM {sql.files(new_files)}")
        days = [EPOCH + timedelta(days=d)
                for (d,) in sql.rows("SELECT DISTINCT day FROM touched")]
        partitions = [p for d in days for p in (log.root / f"event_date={d}").glob("*.parquet")]
        # a daily table from before the exact score sum holds doubles: read as the exact type
        stored = ", ".join(f"CAST(score_sum AS {EXACT_SCORE}) AS score_sum" if n == "score_sum"
                           else n for n in names)
        kept = (f"SELECT {stored} FROM {sql.files([repo.daily])} d WHERE NOT EXISTS "
                "(SELECT 1 FROM touched t WHERE t.customer_id = d.customer_id AND t.day = d.day)"
                " UNION ALL " if repo.daily.exists() else "")
    for k, batch in enumerate(_day_batches(partitions, sql.event_bytes_per_pass)):
        source = sql.files(batch) if full else (
            f"(SELECT e.* FROM {sql.files(batch)} e JOIN touched t "
            f"ON e.customer_id = t.customer_id AND t.day = {day('e.timestamp')})")
        fresh = f"SELECT {columns} FROM ({daily_sql(source, dialect, spec)}) AS fresh"
        if k:
            sql.append("daily", fresh)
        else:
            sql.create("daily", kept + fresh)
    if full:
        sql.create("touched", "SELECT customer_id, day FROM daily")
    return sql.rows("SELECT count(*) FROM touched")[0][0]


def _day_batches(partitions: list[Path], limit: int | None) -> list[list[Path]]:
    """The event-log files in batches of whole ``event_date`` partitions, each of at most
    ``limit`` bytes unless one day alone is larger; one batch without a limit."""
    if not limit:
        return [list(partitions)]
    by_day: dict[Path, list[Path]] = {}
    for path in sorted(partitions):
        by_day.setdefault(path.parent, []).append(path)
    batches: list[list[Path]] = [[]]
    size = 0
    for files in by_day.values():
        day_size = sum(f.stat().st_size for f in files)
        if batches[-1] and size + day_size > limit:
            batches.append([])
            size = 0
        batches[-1].extend(files)
        size += day_size
    return batches


def _recompute(sql: Engine, repo: RepoPaths, spec: FeatureSpec, summary: BuildSummary) -> None:
    """Feature rows of the touched customers from their first touched day + 1, with every other
    row of the month files from that day's month on, rewritten month by month.

    The touched customers' rows are computed in passes (customers split by a hash; see
    :attr:`~usage_features.adapters.sql_engine.Engine.rows_per_pass`) and staged by month, so no
    step holds the whole table: each month file is then written from its own staged rows.
    """
    dialect = DIALECTS[sql.dialect]
    sql.create("starts", "SELECT customer_id, min(day) + 1 AS first_day "
                         "FROM touched GROUP BY customer_id")
    affected = "(SELECT d.* FROM daily d JOIN starts s ON d.customer_id = s.customer_id)"
    columns = ["customer_id", "feature_timestamp", "day", *(f.name for f in spec.stored)]
    month = dialect.month.format(ts="feature_timestamp")
    first_day = sql.rows("SELECT min(first_day) FROM starts")[0][0]
    first_month = (EPOCH + timedelta(days=first_day)).strftime("%Y-%m")
    existing = sorted(p for p in repo.customer_usage.glob("*.parquet") if p.stem >= first_month)
    staging = repo.data / ".build"
    shutil.rmtree(staging, ignore_errors=True)
    passes = _passes(sql, affected)
    for k in range(passes):  # each customer in one pass: windows never cross passes
        part = affected if passes == 1 else (
            f"(SELECT * FROM {affected} a "
            f"WHERE {dialect.bucket.format(key='a.customer_id', n=passes)} = {k})")
        sql.stage(f"SELECT {', '.join('f.' + c for c in columns)}, {month} AS month "
                  f"FROM ({features_sql(part, dialect, spec)}) f "
                  "JOIN starts s ON f.customer_id = s.customer_id AND f.day >= s.first_day",
                  "month", staging, part=k)
    if existing:  # the rows the touched customers' new rows do not replace
        sql.stage(f"SELECT {', '.join('e.' + c for c in columns)}, {month} AS month "
                  f"FROM {sql.files(existing)} e LEFT JOIN starts s "
                  "ON e.customer_id = s.customer_id "
                  "WHERE s.first_day IS NULL OR e.day < s.first_day", "month", staging,
                  part=passes)
    months = sorted(d.name.split("=", 1)[1] for d in staging.glob("month=*"))
    for value in months:
        parts = sorted((staging / f"month={value}").glob("*.parquet"))
        sql.write(f"SELECT * FROM {sql.files(parts)}",
                  repo.customer_usage / f"{value}.parquet", order_by="customer_id, day")
    shutil.rmtree(staging, ignore_errors=True)
    for stale in {p.stem for p in existing} - set(months):
        (repo.customer_usage / f"{stale}.parquet").unlink()
        remove_sidecar(repo.customer_usage / f"{stale}.parquet")
    # row-level fetch for retrieval (see adapters.row_sidecar): the months just written, and
    # any other without a current sidecar (a repo built before sidecars, one deleted)
    for month in sorted(repo.customer_usage.glob("*.parquet")):
        if not has_current_sidecar(month):
            write_sidecar(month)
    sql.write("SELECT * FROM daily", repo.daily, order_by="customer_id, day")
    summary.customers_recomputed = sql.rows("SELECT count(*) FROM starts")[0][0]
    summary.first_changed_day = str(EPOCH + timedelta(days=first_day))
    summary.months_rewritten = months


def _passes(sql: Engine, affected: str) -> int:
    """How many passes turn the ``affected`` daily rows into feature rows (see
    :attr:`~usage_features.adapters.sql_engine.Engine.rows_per_pass`)."""
    if not sql.rows_per_pass:
        return 1
    (rows,), = sql.rows(f"SELECT count(*) FROM {affected} a")
    return max(1, -(-rows // sql.rows_per_pass))


def _refresh_profile(repo: RepoPaths, state: dict) -> int | None:
    """Rewrite the customer-profile table when the customers table changed; its row count.

    A copy of the (small, local) customers table: DuckDB does it whatever the build's engine.
    """
    stamp = repo.customers.stat().st_mtime_ns if repo.customers.exists() else None
    if state.get("customers_mtime_ns") == stamp and repo.customer_profile.exists():
        return None
    with connect() as con:
        if stamp is None:  # no customers loaded yet: an empty table, so the Feast source exists
            con.register("customers", CUSTOMER_SCHEMA.empty_table())
            customers = "customers"
        else:
            customers = f"read_parquet({parquet_list([repo.customers])})"
        copy_atomically(
            con,
            # signup_at to the second, as the online stores keep it (tenure agrees exactly)
            f"SELECT customer_id, date_trunc('second', signup_at) AS signup_at, plan, "
            f"signup_at AS valid_from "
            f"FROM {customers} ORDER BY customer_id",
            repo.customer_profile,
        )
        state["customers_mtime_ns"] = stamp
        return con.execute(f"SELECT count(*) FROM {customers}").fetchall()[0][0]


def _first_signup_day(repo: RepoPaths) -> str | None:
    with connect() as con:
        (first,) = con.execute(
            f"SELECT CAST(min(valid_from) AS DATE) FROM "
            f"read_parquet({parquet_list([repo.customer_profile])})").fetchall()[0]
    return None if first is None else str(first)


def _table_stats(sql: Engine, repo: RepoPaths, summary: BuildSummary) -> None:
    months = sorted(repo.customer_usage.glob("*.parquet"))
    rows, customers, first, last = sql.rows(
        f"SELECT count(*), count(DISTINCT customer_id), min(day), max(day) "
        f"FROM {sql.files(months)}"
    )[0] if months else (0, 0, None, None)
    summary.feature_rows, summary.customers = rows, customers
    summary.customer_days = customers * (last - first + 1) if rows else 0

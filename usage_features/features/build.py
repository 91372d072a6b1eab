"""``usage-features build``: the event log -> compact feature tables (DuckDB), incrementally.

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

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from usage_features.adapters.duckdb_connection import connect, copy_atomically, parquet_list, run
from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.features.sql import DUCKDB, daily_sql, features_sql
from usage_features.features.spec import stored_features
from usage_features.features.state import load_state, save_state
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

    @property
    def changed(self) -> bool:
        return bool(self.new_event_files) or self.profile_rows is not None

    def to_dict(self) -> dict:
        return {**asdict(self), "changed": self.changed}


def build_features(repo: RepoPaths, on_step: Callable[[str], None] | None = None) -> BuildSummary:
    """Bring the feature tables up to date with the event log (and the customers table)."""
    step = on_step or (lambda _: None)
    log = EventLog(repo)
    with log.write_lock():
        files = {str(p.relative_to(log.root)): p for p in log.files()}
        if not files:
            raise NoEventsError(f"no events in {log.root}; run `usage-features ingest` first")
        state = load_state(repo)
        new = sorted(set(files) - set(state["event_files"]))
        summary = BuildSummary(new_event_files=len(new))
        con = connect()
        if new:
            step(f"aggregating {len(new)} new event file(s)")
            touched_days = _aggregate_touched(con, repo, log, [files[n] for n in new],
                                              full=not state["event_files"])
            step(f"recomputing {touched_days} touched customer-day(s)")
            _recompute(con, repo, summary)
        summary.profile_rows = _refresh_profile(con, repo, state)
        if summary.first_changed_day is not None:  # for `usage-features materialize`
            pending = state.setdefault("unmaterialized_since", {})
            for config in repo.repo.glob("feature_store*.yaml"):
                pending[config.name] = min(filter(None, (pending.get(config.name),
                                                         summary.first_changed_day)))
        _table_stats(con, repo, summary)
        state["event_files"] = sorted(files)
        save_state(repo, state)
    return summary


def _aggregate_touched(con, repo: RepoPaths, log: EventLog, new_files, full: bool) -> int:
    """Daily rows for every (customer, day) the new files touch, merged into ``daily``."""
    day = DUCKDB.day_number.format(date=DUCKDB.event_date.format(ts="timestamp"))
    run(con, 
        f"CREATE TABLE touched AS SELECT DISTINCT customer_id, {day} AS day "
        f"FROM read_parquet({parquet_list(new_files)})"
    )
    if full:
        source = f"read_parquet('{log.glob}', hive_partitioning = false)"
    else:
        days = [EPOCH + timedelta(days=d) for (d,) in
                con.execute("SELECT DISTINCT day FROM touched").fetchall()]
        partitions = [p for d in days for p in (log.root / f"event_date={d}").glob("*.parquet")]
        source = (f"(SELECT * FROM read_parquet({parquet_list(partitions)}) "
                  f"WHERE (customer_id, {day}) IN (SELECT (customer_id, day) FROM touched))")
    run(con, f"CREATE TABLE fresh_daily AS {daily_sql(source, DUCKDB)}")
    kept = (f"SELECT * FROM read_parquet('{repo.daily}') "
            "ANTI JOIN touched USING (customer_id, day) UNION ALL BY NAME "
            if repo.daily.exists() and not full else "")
    run(con, f"CREATE TABLE daily AS {kept}SELECT * FROM fresh_daily")
    return con.execute("SELECT count(*) FROM touched").fetchall()[0][0]


def _recompute(con, repo: RepoPaths, summary: BuildSummary) -> None:
    run(con, "CREATE TABLE starts AS SELECT customer_id, min(day) + 1 AS first_day "
                "FROM touched GROUP BY customer_id")
    affected = "(SELECT * FROM daily SEMI JOIN starts USING (customer_id))"
    run(con, 
        f"CREATE TABLE fresh AS SELECT f.* FROM ({features_sql(affected, DUCKDB)}) f "
        "JOIN starts s ON f.customer_id = s.customer_id AND f.day >= s.first_day"
    )
    first_day = con.execute("SELECT min(first_day) FROM starts").fetchall()[0][0]
    first_month = (EPOCH + timedelta(days=first_day)).strftime("%Y-%m")
    existing = sorted(p for p in repo.customer_usage.glob("*.parquet") if p.stem >= first_month)
    kept = (
        f"SELECT e.* FROM read_parquet({parquet_list(existing)}) e "
        "LEFT JOIN starts s ON e.customer_id = s.customer_id "
        "WHERE s.first_day IS NULL OR e.day < s.first_day UNION ALL BY NAME "
        if existing else ""
    )
    run(con, f"CREATE TABLE merged AS {kept}SELECT * FROM fresh")
    columns = ", ".join(["customer_id", "feature_timestamp", "day",
                         *(f.name for f in stored_features())])
    months = [m for (m,) in con.execute(
        "SELECT DISTINCT strftime(feature_timestamp, '%Y-%m') AS m FROM merged ORDER BY m"
    ).fetchall()]
    for month in months:
        copy_atomically(
            con,
            f"SELECT {columns} FROM merged WHERE strftime(feature_timestamp, '%Y-%m') = "
            f"'{month}' ORDER BY customer_id, day",
            repo.customer_usage / f"{month}.parquet",
        )
    for stale in set(p.stem for p in existing) - set(months):
        (repo.customer_usage / f"{stale}.parquet").unlink()
    copy_atomically(con, "SELECT * FROM daily ORDER BY customer_id, day", repo.daily)
    summary.customers_recomputed = con.execute("SELECT count(*) FROM starts").fetchall()[0][0]
    summary.first_changed_day = str(EPOCH + timedelta(days=first_day))
    summary.months_rewritten = months


def _refresh_profile(con, repo: RepoPaths, state: dict) -> int | None:
    """Rewrite the customer-profile table when the customers table changed; its row count."""
    stamp = repo.customers.stat().st_mtime_ns if repo.customers.exists() else None
    if state.get("customers_mtime_ns") == stamp and repo.customer_profile.exists():
        return None
    if stamp is None:  # no customers loaded yet: an empty table, so the Feast source exists
        con.register("customers", CUSTOMER_SCHEMA.empty_table())
        customers = "customers"
    else:
        customers = f"read_parquet('{repo.customers}')"
    copy_atomically(
        con,
        f"SELECT customer_id, signup_at, plan, signup_at AS valid_from "
        f"FROM {customers} ORDER BY customer_id",
        repo.customer_profile,
    )
    state["customers_mtime_ns"] = stamp
    return con.execute(f"SELECT count(*) FROM {customers}").fetchall()[0][0]


def _table_stats(con, repo: RepoPaths, summary: BuildSummary) -> None:
    rows, customers, first, last = con.execute(
        f"SELECT count(*), count(DISTINCT customer_id), min(day), max(day) "
        f"FROM read_parquet('{repo.customer_usage}/*.parquet')"
    ).fetchall()[0]
    summary.feature_rows, summary.customers = rows, customers
    summary.customer_days = customers * (last - first + 1) if rows else 0

"""``usage-features build``: the event log -> compact feature tables, incrementally.

The build remembers which event-log files it has folded in (``_build_state.json``). A rebuild:

1. finds the log files added since (none: nothing is written, nothing changes);
2. re-aggregates only the (customer, day) pairs those files touch, from the log partitions of
   those days, and swaps them into the daily table;
3. recomputes the feature rows of the touched customers on or after each one's first touched
   day + 1, from their daily rows of the lookback before it and one "carry" row of the older
   ones' aggregates (:func:`_recent`: exactly the rows the whole history gives), and rewrites
   only the month files from the earliest such day on; every other row stays as it was.

A full build is the same path with every file new. It holds the repo's write lock, so it never
sees half an ingest.

Every file it writes under ``data/features/`` is recorded in its state with its checksums
(:mod:`usage_features.adapters.feature_tables`), and every build first checks the files against
those records (:func:`check_tables`; a file whose size and modification time are those recorded
when it was last read whole is not read again, ``verify`` reads them all): a month file
changed, truncated or missing is recomputed
from the daily table, a damaged sidecar rewritten, a file the build never wrote removed, and a
damaged daily table or state rebuilds everything from the event log (each repair is a line of
:attr:`BuildSummary.repaired`). The event-log files it reads are checked against the checksums
their ingest recorded. New files are written beside their places (``data/.build-tables/``) and
moved in with the state under the exclusive tables lock, so a reader never sees them with the
older records.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path

from usage_features.adapters.checksums import (
    DamagedFileError,
    file_problem,
    file_problem_by_time,
    parquet_record,
)
from usage_features.adapters.duckdb_connection import (
    connect,
    copy_atomically,
    parquet_list,
    sql_string,
)
from usage_features.adapters.event_log import EventLog
from usage_features.adapters.feature_tables import RECORDS, publishing, table_key
from usage_features.adapters.files import fsync_dir
from usage_features.adapters.key_index import key_index_path, write_key_index
from usage_features.adapters.row_sidecar import is_older_version, sidecar_path, write_sidecar
from usage_features.adapters.spark_session import repo_spark_conf
from usage_features.adapters.sql_engine import Engine, open_engine
from usage_features.config import RepoPaths
from usage_features.features.spec import EXACT_SCORE, FeatureSpec, feature_spec
from usage_features.features.sql import (
    DIALECTS,
    carry_sql,
    daily_sql,
    features_sql,
    lookback_days,
)
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
    #: Stored files found damaged and repaired, one line each (file, what was wrong, what
    #: the build did).
    repaired: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return (bool(self.new_event_files) or self.profile_rows is not None
                or self.vocabulary_changed or bool(self.repaired))

    def to_dict(self) -> dict:
        return {**asdict(self), "changed": self.changed}


def build_features(repo: RepoPaths, on_step: Callable[[str], None] | None = None,
                   engine: str = "duckdb", spark_master: str | None = None,
                   memory_limit: int | None = None) -> BuildSummary:
    """Bring the feature tables up to date with the event log (and the customers table).

    ``engine``: ``duckdb`` (in process) or ``spark`` (configured by the repo's
    ``feature_store.spark.yaml``; see :mod:`usage_features.adapters.spark_session`). Both run
    the same SQL and write the same tables. ``spark_master`` (spark engine only) overrides the
    config's ``spark.master``. ``memory_limit``: DuckDB's, in bytes (default its connections').
    """
    if spark_master and engine != "spark":
        raise ValueError(f"spark_master is for the spark engine, not {engine!r}")
    step = on_step or (lambda _: None)
    log = EventLog(repo)
    with log.write_lock():
        files = {str(p.relative_to(log.root)): p for p in log.files()}
        if not files:
            raise NoEventsError(f"no events in {log.root}; run `usage-features ingest` first")
        summary = BuildSummary()
        state = _state_or_rebuild(repo, step, summary)
        if repo.single_file_daily.exists():
            _split_single_file_daily(repo, state, step, summary)
        vocabulary = load_vocabulary(repo.repo)
        spec = feature_spec(vocabulary)
        built_with = state.get("vocabulary_sha256", feature_spec().vocabulary.sha256)
        damage = Damage()
        if state["event_files"] and built_with != vocabulary.sha256:
            step("the event vocabulary changed (a schema change): rebuilding every feature table")
            state["event_files"] = []
            summary.vocabulary_changed = True
        elif state["event_files"]:
            step("checking the feature tables against their checksums")
            damage = check_tables(repo, state, by_time=True)
            summary.repaired += [f"{path}: {problem}; {action}"
                                 for path, problem, action in damage.found]
            if damage.full:
                step("the daily table is damaged: rebuilding every feature table")
                state["event_files"] = []
        full = not state["event_files"]
        state["vocabulary_sha256"] = vocabulary.sha256
        new = sorted(set(files) - set(state["event_files"]))
        summary.new_event_files = len(new)
        tables = Tables(repo.data / ".build-tables", full=full)
        shutil.rmtree(tables.out, ignore_errors=True)
        tables.out.mkdir(parents=True)
        conf = None
        if engine == "spark":
            conf = repo_spark_conf(repo.repo) | ({"spark.master": spark_master}
                                                 if spark_master else {})
        sql = open_engine(engine, conf, spill_to=repo.data / ".spill", memory_limit=memory_limit)
        try:
            if new:
                step(f"aggregating {len(new)} new event file(s) with {engine}")
                touched_days = _aggregate_touched(sql, repo, log, [files[n] for n in new],
                                                  spec, tables)
                step(f"recomputing {touched_days} touched customer-day(s) with {engine}")
                _recompute(sql, repo, spec, summary, tables, damage.months)
                _write_daily(sql, repo, tables)
            elif damage.months:
                step(f"recomputing {len(damage.months)} damaged month file(s) with {engine}")
                _daily_from_table(sql, repo, spec)
                _recompute(sql, repo, spec, summary, tables, damage.months)
            summary.profile_rows = _refresh_profile(repo, state, tables, damage.profile)
        finally:
            sql.close()
        tables.sidecars |= damage.sidecars - set(tables.months)
        tables.extra = damage.extra
        step("recording the tables' checksums and moving them in")
        # for `usage-features materialize`: the first day whose rows changed (a rewritten
        # profile from its first signup, so a newly loaded customer reaches the online store)
        changed = [summary.first_changed_day,
                   _first_signup_day(tables.profile(repo)) if summary.profile_rows else None]
        if any(changed):
            pending = state.setdefault("unmaterialized_since", {})
            for config in repo.repo.glob("feature_store*.yaml"):
                pending[config.name] = min(filter(None, (pending.get(config.name), *changed)))
        state["event_files"] = sorted(files)
        _publish(repo, state, tables)
        shutil.rmtree(tables.out, ignore_errors=True)
        _table_stats(repo, summary)
    return summary


def _state_or_rebuild(repo: RepoPaths, step, summary: BuildSummary) -> dict:
    """The build's state; a damaged one (or one without checksums) is replaced by an empty
    one, so that everything is rebuilt from the event log."""
    try:
        return load_state(repo)
    except DamagedFileError as exc:
        step("the build state is damaged: rebuilding every feature table")
        summary.repaired.append(f"{exc.path}: {exc.problem}; rebuilt every feature table "
                                "from the event log")
        return {"event_files": []}


@dataclass
class Damage:
    """What :func:`check_tables` found wrong with the stored tables."""

    #: The daily table is damaged: every table is rebuilt from the event log.
    full: bool = False
    #: Month files to recompute (``YYYY-MM``): changed, truncated or missing.
    months: set[str] = field(default_factory=set)
    #: Months whose file is sound but whose sidecar must be rewritten.
    sidecars: set[str] = field(default_factory=set)
    #: The profile table must be rewritten.
    profile: bool = False
    #: Files under the month directory the build never wrote (removed).
    extra: list[Path] = field(default_factory=list)
    #: Each finding: the file, what is wrong with it, what the build does about it.
    found: list[tuple[Path, str, str]] = field(default_factory=list)


def check_tables(repo: RepoPaths, state: dict, by_time: bool = False) -> Damage:
    """Every file the build recorded in ``state`` against its record (size and SHA-256), and
    the month directory against the recorded months (``build`` repairs what this finds;
    ``verify`` reports it).

    ``by_time`` (the build's check): a file whose size and modification time are as last
    recorded is not read (:func:`~usage_features.adapters.checksums.file_problem_by_time`),
    so a day's build does not read the whole history's files; ``verify`` reads them all.
    """
    records = state.get(RECORDS, {})
    damage = Damage()
    problem_of = partial(file_problem_by_time, now=time.time()) if by_time else file_problem
    daily_prefix = table_key(repo, repo.daily) + "/"
    # each month recorded and each month file there (one the build never wrote would be read)
    daily = sorted({*(k for k in records if k.startswith(daily_prefix)),
                    *(table_key(repo, f) for f in repo.daily_files)})
    for key in daily or [table_key(repo, repo.daily)]:  # none: the table is not recorded
        path = repo.features / key
        problem = _recorded_problem(repo, records, path, problem_of)
        if problem:
            damage.full = True
            damage.found.append((path, problem, "rebuilt every feature table from the event log"))
            return damage
    prefix = table_key(repo, repo.customer_usage) + "/"
    months = {key: record for key, record in records.items() if key.startswith(prefix)}
    for key, record in sorted(months.items()):
        path = repo.features / key
        problem = problem_of(path, record)
        if problem:
            damage.months.add(path.stem)
            damage.found.append((path, problem, "recomputed from the event log"))
            continue
        if KEYS not in record or is_older_version(sidecar_path(path)):
            # written before key indexes, or a sidecar of an earlier format: written now, not
            # a problem (a reader reads the Parquet file meanwhile)
            damage.sidecars.add(path.stem)
        for name, place in COMPANIONS.items():
            problem = problem_of(place(path), record[name]) if record.get(name) else None
            if problem:
                damage.sidecars.add(path.stem)
                damage.found.append((place(path), problem, "rewritten"))
    for path in sorted(repo.customer_usage.rglob("*.parquet")):
        if table_key(repo, path) not in months:
            damage.extra.append(path)
            damage.found.append((path, "not written by the build", "removed"))
    problem = _recorded_problem(repo, records, repo.customer_profile, problem_of)
    if problem:
        damage.profile = True
        damage.found.append((repo.customer_profile, problem,
                             "rewritten from the customers table"))
    return damage


def _recorded_problem(repo: RepoPaths, records: dict, path: Path, problem_of
                      ) -> str | None:
    """What differs between one of the build's files and its record (None: nothing), by
    ``problem_of`` (:func:`file_problem` or :func:`file_problem_by_time`)."""
    record = records.get(table_key(repo, path))
    return problem_of(path, record) if record else "not recorded"


@dataclass
class Tables:
    """The files a build writes beside their places (``out``), until :func:`_publish`."""

    out: Path
    #: Rebuilt from nothing: every month not written is removed.
    full: bool = False
    #: Months written (``YYYY-MM``), and months that no longer have rows.
    months: list[str] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)
    #: Sound months whose sidecar is rewritten.
    sidecars: set[str] = field(default_factory=set)
    extra: list[Path] = field(default_factory=list)
    #: Single tables written (the daily table's months, the profile): their places.
    singles: list[Path] = field(default_factory=list)
    #: The months (``YYYY-MM``) whose daily rows the engine's ``daily`` table holds (None:
    #: every month); the stored files hold the others.
    daily_months: set[str] | None = None

    def month(self, value: str) -> Path:
        return self.out / "months" / f"{value}.parquet"

    def staged(self, target: Path) -> Path:
        """Where the single table ``target`` is written (recorded to be moved in)."""
        self.singles.append(target)
        return self.out / target.name

    def profile(self, repo: RepoPaths) -> Path:
        """The profile table as it will be: the one written, else the one in place."""
        staged = self.out / repo.customer_profile.name
        return staged if repo.customer_profile in self.singles else repo.customer_profile


#: The record of a month file's key index (:mod:`~usage_features.adapters.key_index`).
KEYS = "keys"
#: The files written beside each month file, by their records' names: where each lives.
COMPANIONS = {"sidecar": sidecar_path, KEYS: key_index_path}


def _companions(month: Path, out: Path | None = None) -> dict:
    """Write ``month``'s row sidecar and key index (into ``out``, else beside it); their
    records (the key index's None where it cannot describe the file)."""
    def place(path: Path) -> Path | None:
        return out / path.name if out else None

    return {"sidecar": write_sidecar(month, place(sidecar_path(month))),
            KEYS: write_key_index(month, "customer_id", "feature_timestamp",
                                  place(key_index_path(month)))}


def _move_in(written: Path, target: Path) -> None:
    """Move a written companion file to its place; a stale one goes where none was written."""
    if written.exists():
        os.replace(written, target)
    else:
        target.unlink(missing_ok=True)


def _publish(repo: RepoPaths, state: dict, tables: Tables) -> None:
    """Record the new files' checksums (writing the sidecars), then move them in and write the
    state, under the exclusive tables lock."""
    records = state.setdefault(RECORDS, {})
    if tables.full:
        records.clear()

    def written(value: str) -> dict:
        staged = tables.month(value)
        return {**parquet_record(staged), **_companions(staged)}

    def rewritten(value: str) -> dict:
        return _companions(repo.customer_usage / f"{value}.parquet", tables.out)

    # a thread per core: hashing, writing and most of NumPy's work let go of the GIL
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for value, record in zip(tables.months, pool.map(written, tables.months)):
            records[table_key(repo, repo.customer_usage / f"{value}.parquet")] = record
        repaired = sorted(tables.sidecars)
        for value, record in zip(repaired, pool.map(rewritten, repaired)):
            records[table_key(repo, repo.customer_usage / f"{value}.parquet")].update(record)
    for target in tables.singles:
        records[table_key(repo, target)] = parquet_record(tables.out / target.name)
    repo.customer_usage.mkdir(parents=True, exist_ok=True)
    repo.daily.mkdir(parents=True, exist_ok=True)
    existing = {p.stem for p in repo.customer_usage.glob("*.parquet")}
    stale = (tables.stale | (existing if tables.full else set())) - set(tables.months)
    stale_daily = [f for f in repo.daily_files if f not in tables.singles] if tables.full else []
    with publishing(repo):
        for value in tables.months:
            staged, month = tables.month(value), repo.customer_usage / f"{value}.parquet"
            for place in COMPANIONS.values():
                _move_in(place(staged), place(month))
            os.replace(staged, month)
        for value in tables.sidecars:
            month = repo.customer_usage / f"{value}.parquet"
            for place in COMPANIONS.values():
                _move_in(tables.out / place(month).name, place(month))
        for target in tables.singles:
            os.replace(tables.out / target.name, target)
        for path in stale_daily:  # (their records went with every other's)
            path.unlink()
        for value in stale:
            month = repo.customer_usage / f"{value}.parquet"
            month.unlink(missing_ok=True)
            for place in COMPANIONS.values():
                place(month).unlink(missing_ok=True)
            records.pop(table_key(repo, month), None)
        for path in tables.extra:
            path.unlink(missing_ok=True)
        for directory in {repo.customer_usage, repo.daily, repo.features}:
            fsync_dir(directory)
        save_state(repo, state)


def _split_single_file_daily(repo: RepoPaths, state: dict, step, summary: BuildSummary
                             ) -> None:
    """An earlier version's one-file daily table as month files, recorded, and the file
    removed; one that is damaged or not recorded is removed and every table rebuilt."""
    single, records = repo.single_file_daily, state.setdefault(RECORDS, {})
    record = records.pop(table_key(repo, single), None)
    problem = file_problem(single, record) if record else "not recorded"
    if problem or not state["event_files"]:
        if state["event_files"]:
            summary.repaired.append(f"{single}: {problem}; rebuilt every feature table from "
                                    "the event log")
            state["event_files"] = []
        single.unlink()
        return
    step("splitting the daily table into a file per month (one file: an earlier version's)")
    out = repo.data / ".build-daily"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    source, month = f"read_parquet({parquet_list([single])})", _month_of_day(DIALECTS["duckdb"])
    with connect() as con:
        months = [m for (m,) in con.execute(f"SELECT DISTINCT {month} FROM {source}").fetchall()]
        for value in months:
            copy_atomically(con, f"SELECT * FROM {source} WHERE {month} = {sql_string(value)} "
                                 "ORDER BY customer_id, day", out / f"{value}.parquet")
    for value in months:
        records[table_key(repo, repo.daily / f"{value}.parquet")] = parquet_record(
            out / f"{value}.parquet")
    repo.daily.mkdir(parents=True, exist_ok=True)
    with publishing(repo):
        for value in months:
            os.replace(out / f"{value}.parquet", repo.daily / f"{value}.parquet")
        fsync_dir(repo.daily)
        save_state(repo, state)
        single.unlink()
    shutil.rmtree(out, ignore_errors=True)


def _daily_from_table(sql: Engine, repo: RepoPaths, spec: FeatureSpec) -> None:
    """The engine's ``daily`` and (empty) ``touched`` tables from the stored daily table, for a
    build that only recomputes damaged months."""
    sql.create("daily", f"SELECT {_stored_daily(spec)} FROM {sql.files(repo.daily_files)}")
    sql.create("touched", "SELECT customer_id, day FROM daily WHERE false")


def _stored_daily(spec: FeatureSpec) -> str:
    """The columns of the stored daily table as the build reads them (a table from before the
    exact score sum holds doubles: read as the exact type)."""
    return ", ".join(f"CAST(score_sum AS {EXACT_SCORE}) AS score_sum" if n == "score_sum"
                     else n for n in ["customer_id", "day", *spec.daily])


def _month_of_day(dialect) -> str:
    """SQL of the ``YYYY-MM`` of the column ``day`` (a day number)."""
    return dialect.month.format(ts=dialect.day_start.format(day="day"))


def _history(sql: Engine, repo: RepoPaths, spec: FeatureSpec, tables: Tables) -> str:
    """Every daily row: the engine's ``daily`` table and the stored months it does not hold."""
    others = ([] if tables.daily_months is None else
              [f for f in repo.daily_files if f.stem not in tables.daily_months])
    if not others:
        return "daily"
    return (f"(SELECT * FROM daily UNION ALL "
            f"SELECT {_stored_daily(spec)} FROM {sql.files(others)})")


def _write_daily(sql: Engine, repo: RepoPaths, tables: Tables) -> None:
    """The months of the engine's ``daily`` table, a file each (to ``tables``)."""
    month = _month_of_day(DIALECTS[sql.dialect])
    months = tables.daily_months
    if months is None:
        months = {m for (m,) in sql.rows(f"SELECT DISTINCT {month} FROM daily")}
    for value in sorted(months):
        sql.write(f"SELECT * FROM daily WHERE {month} = {sql_string(value)}",
                  tables.staged(repo.daily / f"{value}.parquet"), order_by="customer_id, day")


def _aggregate_touched(sql: Engine, repo: RepoPaths, log: EventLog, new_files,
                       spec: FeatureSpec, tables: Tables) -> int:
    """Daily rows for every (customer, day) the new files touch, merged into ``daily`` with the
    other rows of their months (:attr:`Tables.daily_months`; every month in a full build).

    A day's events all lie in its ``event_date`` partition, so the partitions are aggregated in
    batches of whole days (:func:`_day_batches`): each batch's groups are complete on their own.
    """
    names = ["customer_id", "day", *spec.daily]
    columns = ", ".join(names)
    dialect = DIALECTS[sql.dialect]
    day = dialect.day_of
    kept, full = "", tables.full
    # what is read is what was ingested: a damaged log file names its inputs to ingest again
    if full:  # every pair is touched: every partition, once
        partitions = log.files()
        log.check(partitions)
    else:
        log.check(new_files)
        sql.create("touched", f"SELECT DISTINCT customer_id, {day('timestamp')} AS day "
                              f"FROM {sql.files(new_files)}")
        days = [EPOCH + timedelta(days=d)
                for (d,) in sql.rows("SELECT DISTINCT day FROM touched")]
        partitions = [p for d in days for p in (log.root / f"event_date={d}").glob("*.parquet")]
        log.check(partitions)
        tables.daily_months = {d.strftime("%Y-%m") for d in days}
        stored = [f for f in repo.daily_files if f.stem in tables.daily_months]
        kept = (f"SELECT {_stored_daily(spec)} FROM {sql.files(stored)} d WHERE NOT EXISTS "
                "(SELECT 1 FROM touched t WHERE t.customer_id = d.customer_id AND t.day = d.day)"
                " UNION ALL " if stored else "")
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


def _recompute(sql: Engine, repo: RepoPaths, spec: FeatureSpec, summary: BuildSummary,
               tables: Tables, redo: set[str]) -> None:
    """Feature rows of the touched customers from their first touched day + 1, with every other
    row of the month files from that day's month on, rewritten month by month; and every row
    of the months ``redo`` (damaged ones: their files are not read).

    The touched customers' rows are computed in passes (customers split by a hash; see
    :attr:`~usage_features.adapters.sql_engine.Engine.rows_per_pass`) and staged by month, so no
    step holds the whole table: each month file is then written (to ``tables``) from its own
    staged rows.
    """
    dialect = DIALECTS[sql.dialect]
    sql.create("starts", "SELECT customer_id, min(day) + 1 AS first_day "
                         "FROM touched GROUP BY customer_id")
    since = None
    columns = ["customer_id", "feature_timestamp", "day", *(f.name for f in spec.stored)]
    month = dialect.month.format(ts="feature_timestamp")
    history = _history(sql, repo, spec, tables)
    if redo:  # every customer's rows in those months, the touched ones' from their first day
        affected = history
        months_redone = ", ".join(sql_string(m) for m in sorted(redo))
        kept = (f"LEFT JOIN starts s ON f.customer_id = s.customer_id WHERE f.day >= "
                f"s.first_day OR {dialect.month.format(ts='f.feature_timestamp')} "
                f"IN ({months_redone})")
    else:
        affected = (f"(SELECT d.* FROM {history} d "
                    "JOIN starts s ON d.customer_id = s.customer_id)")
        kept = "JOIN starts s ON f.customer_id = s.customer_id AND f.day >= s.first_day"
        recent = None if tables.full else _recent(spec, history)
        if recent:  # the lookback's rows and a carry row, not the whole history
            sql.create("recent", recent)
            affected, since = "recent", "starts"
    first_day = sql.rows("SELECT min(first_day) FROM starts")[0][0]
    first_month = (None if first_day is None
                   else (EPOCH + timedelta(days=first_day)).strftime("%Y-%m"))
    existing = [] if tables.full or first_month is None else sorted(
        p for p in repo.customer_usage.glob("*.parquet")
        if p.stem >= first_month and p.stem not in redo)
    staging = repo.data / ".build"
    shutil.rmtree(staging, ignore_errors=True)
    passes = _passes(sql, affected, (sql.lookback_rows_per_pass or sql.rows_per_pass) if since
                     else sql.rows_per_pass)
    for k in range(passes):  # each customer in one pass: windows never cross passes
        part = affected if passes == 1 else (
            f"(SELECT * FROM {affected} a "
            f"WHERE {dialect.bucket.format(key='a.customer_id', n=passes)} = {k})")
        sql.stage(f"SELECT {', '.join('f.' + c for c in columns)}, {month} AS month "
                  f"FROM ({features_sql(part, dialect, spec, since)}) f {kept}",
                  "month", staging, part=k)
    if existing:  # the rows the touched customers' new rows do not replace
        sql.stage(f"SELECT {', '.join('e.' + c for c in columns)}, {month} AS month "
                  f"FROM {sql.files(existing)} e LEFT JOIN starts s "
                  "ON e.customer_id = s.customer_id "
                  "WHERE s.first_day IS NULL OR e.day < s.first_day", "month", staging,
                  part=passes)
    staged = sql.staged("month", staging)
    months = sorted(staged)
    tables.month("").parent.mkdir(parents=True, exist_ok=True)
    for value in months:
        sql.write(f"SELECT * FROM {staged[value]}", tables.month(value),
                  order_by="customer_id, day")
    shutil.rmtree(staging, ignore_errors=True)
    tables.months = months
    tables.stale = ({p.stem for p in existing} | redo) - set(months)
    summary.customers_recomputed = sql.rows("SELECT count(*) FROM starts")[0][0]
    starts = [EPOCH + timedelta(days=first_day)] if first_day is not None else []
    starts += [date.fromisoformat(f"{m}-01") for m in redo]
    summary.first_changed_day = str(min(starts))
    summary.months_rewritten = months


def _recent(spec: FeatureSpec, history: str) -> str | None:
    """The touched customers' daily rows (of the relation ``history``, every daily row) an
    incremental recompute reads: those from
    :func:`~usage_features.features.sql.lookback_days` before each one's first recomputed day
    on, and one "carry" row the day before them holding the aggregates of the older rows that
    the unbounded windows read (:func:`~usage_features.features.sql.carry_sql`; its other
    columns null). None (read the whole history) when some feature's aggregate over the whole
    history does not compose.

    Exact, not an approximation: the rows from the first day on are those the whole history
    gives (``features_sql(since=...)`` compares the first with the values in effect the day
    before, computed from the same rows), so a day's build costs in proportion to the days
    changed and the lookback, not the customers' history; ``tests/integration/
    test_incremental_lookback.py`` compares every row with a full build's."""
    carry = carry_sql(spec)
    if carry is None:
        return None
    back = lookback_days(spec)
    names = ["customer_id", "day", *spec.daily]
    read = ", ".join(f"d.{n}" for n in names)
    carried = ", ".join(carry.get(n, "NULL") + f" AS {n}" for n in spec.daily)
    return (f"SELECT {read} FROM {history} d JOIN starts s ON d.customer_id = s.customer_id "
            f"WHERE d.day >= s.first_day - {back} "
            f"UNION ALL SELECT d.customer_id, s.first_day - {back + 1} AS day, {carried} "
            f"FROM {history} d JOIN starts s ON d.customer_id = s.customer_id "
            f"WHERE d.day < s.first_day - {back} GROUP BY d.customer_id, s.first_day")


def _passes(sql: Engine, affected: str, rows_per_pass: int | None) -> int:
    """How many passes of at most ``rows_per_pass`` rows turn the ``affected`` daily rows into
    feature rows (see :attr:`~usage_features.adapters.sql_engine.Engine.rows_per_pass`)."""
    if not rows_per_pass:
        return 1
    (rows,), = sql.rows(f"SELECT count(*) FROM {affected} a")
    return max(1, -(-rows // rows_per_pass))


def _refresh_profile(repo: RepoPaths, state: dict, tables: Tables, damaged: bool) -> int | None:
    """Rewrite the customer-profile table when the customers table changed (or the profile is
    ``damaged``); its row count.

    A copy of the (small, local) customers table: DuckDB does it whatever the build's engine.
    """
    stamp = repo.customers.stat().st_mtime_ns if repo.customers.exists() else None
    if (state.get("customers_mtime_ns") == stamp and repo.customer_profile.exists()
            and not damaged and not tables.full):
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
            tables.staged(repo.customer_profile),
        )
        state["customers_mtime_ns"] = stamp
        return con.execute(f"SELECT count(*) FROM {customers}").fetchall()[0][0]


def _first_signup_day(profile: Path) -> str | None:
    with connect() as con:
        (first,) = con.execute(
            f"SELECT CAST(min(valid_from) AS DATE) FROM "
            f"read_parquet({parquet_list([profile])})").fetchall()[0]
    return None if first is None else str(first)


def _table_stats(repo: RepoPaths, summary: BuildSummary) -> None:
    months = sorted(repo.customer_usage.glob("*.parquet"))
    if not months:
        return
    with connect() as con:
        rows, customers, first, last = con.execute(
            f"SELECT count(*), count(DISTINCT customer_id), min(day), max(day) "
            f"FROM read_parquet({parquet_list(months)})").fetchall()[0]
    summary.feature_rows, summary.customers = rows, customers
    summary.customer_days = customers * (last - first + 1) if rows else 0

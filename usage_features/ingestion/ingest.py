"""Ingest raw usage-event files into the event log: validate, quarantine, deduplicate, commit.

1. Every input is opened and its columns checked before anything is written; a missing column
   is an error that names it.
2. Rows stream through column-wise validation (SQL) into a staging table, a million at a time
   (:mod:`usage_features.ingestion.staging`).
3. Under the repo's write lock, valid rows are classified against the whole log (through its
   id index, :mod:`usage_features.adapters.event_index`: only the stored rows whose id hashes
   like a new one's are read) and against earlier rows of the same input: ``accepted`` (new
   id), ``duplicate`` (same id, same values) or ``conflict`` (same id, other values: rejected,
   never overwritten).
4. Rejected rows go to ``data/quarantine/<file>-<hash>.parquet`` with their original values
   and a ``reason``; accepted rows are committed atomically to the log (see ``EventLog``), then
   indexed (an ingest stopped in between: the next one indexes them first).

Re-ingesting a file adds nothing and rewrites its quarantine file with the same rows.

:func:`event_repository` is the event log as the repository port, its writes through this path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from usage_features.adapters.duckdb_connection import (
    connect,
    copy_atomically,
    run,
    sql_string,
)
from usage_features.adapters.event_index import (
    DamagedIndexError,
    EventIdIndex,
    sorted_unique,
)
from usage_features.adapters.event_log import EventLog, rows_sql
from usage_features.adapters.parquet_repository import ParquetUsageRepository
from usage_features.adapters.stored_files import stored_files
from usage_features.config import RepoPaths
from usage_features.domain.repository import ConflictingEventError
from usage_features.domain.vocabulary import Adoption
from usage_features.ingestion.readers import (
    Input,
    InputError,
    LinkDirectory,
    open_input,
    table_input,
)
from usage_features.ingestion.settings import IngestSettings, load_settings
from usage_features.ingestion.staging import (
    RAW,
    STAGED_EVENT,
    Rules,
    create_staging_table,
    number_identical_rows,
    stage,
    stage_parquet,
)
from usage_features.ingestion.validation import stripped
from usage_features.schema import EVENT_COLUMNS

#: A staged valid row's event columns compared with stored rows.
_COMPARED = STAGED_EVENT
#: Null-safe: a log without adoption scores stores none.
_SAME_VALUES = " AND ".join(f"v.{c} IS NOT DISTINCT FROM ref_{c}" for c in EVENT_COLUMNS[1:])
#: Accepted rows sorted and written at a time (whole days; see :func:`_commit_accepted`).
COMMIT_ROWS = 8_000_000
#: Staged ids whose hashes are looked up in the id index at a time (64 MiB of hashes).
LOOKUP_BATCH = 1 << 23


@dataclass
class IngestSummary:
    """What one ingest did. Always ``read == accepted + rejected + duplicates``."""

    read: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    quarantine_files: list[str] = field(default_factory=list)
    #: Rows per event name the repo's vocabulary does not declare (kept under ``unlisted:
    #: other``, quarantined as ``unknown_event_type`` under ``reject``), most frequent first.
    unlisted_by_name: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@stored_files
def ingest_files(
    paths: Sequence[Path],
    repo: RepoPaths,
    now: datetime | None = None,
    on_rows: Callable[[int], None] | None = None,
    columns: Mapping[str, str] | None = None,
) -> IngestSummary:
    """Ingest files into ``repo``'s event log. ``now`` bounds future timestamps.

    ``columns`` maps the files' column names to event columns; by default, the mapping stored
    in the repo's ``usage_features.yaml`` (whose limits apply either way).
    """
    settings = load_settings(repo.repo)
    rules = _rules(settings, now)
    mapping = dict(settings.event_columns if columns is None else columns)
    mapping |= dict(zip(settings.event_key, rules.key_targets()))
    required, optional = event_columns(settings)
    with _connect(repo) as con, LinkDirectory() as links:
        sources = {Path(p): _open(con, Path(p), links, required, optional, mapping, rules)
                   for p in paths}
        return _ingest(con, sources, repo, rules, on_rows)


def event_columns(settings: IngestSettings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) event columns of an input: the id is optional (derived from the
    content when absent), the score required only when the adoption features come from it."""
    scored = settings.vocabulary.adoption == Adoption.SCORE
    required = ("customer_id", "timestamp", "event_type",
                *(("feature_adoption_score",) if scored else ()))
    return required, tuple(c for c in EVENT_COLUMNS if c not in required)


def _rules(settings: IngestSettings, now: datetime | None) -> Rules:
    return Rules(now or datetime.now(UTC), settings.limits, settings.vocabulary,
                 settings.event_key)


def _open(con, path: Path, links, required, optional, mapping, rules: Rules):
    source = open_input(con.cursor(), path, links, required,
                        optional + rules.key_targets(), mapping)
    missing = [k for k, target in zip(rules.key_columns, rules.key_targets())
               if target in source.absent]
    if "event_id" in source.absent and missing:
        raise InputError(f"{path}: no event_id column, and the key column(s) "
                         f"{', '.join(missing)} (events.key) that would identify its events "
                         "are absent")
    return source


def ingest_table(table: pa.Table, repo: RepoPaths, now: datetime | None = None) -> IngestSummary:
    """Ingest an in-memory table all or nothing (the repository port's ``add`` contract).

    A conflicting event id raises :class:`ConflictingEventError`, any other invalid row a
    ``ValueError``; in both cases nothing is written.
    """
    with _connect(repo) as con:
        source = table_input(con.cursor(), table)
        return _ingest(con, {None: source}, repo, _rules(load_settings(repo.repo), now), None,
                       all_or_nothing=True)


def event_repository(repo: RepoPaths) -> ParquetUsageRepository:
    """``repo``'s event log as the repository port, its ``add`` through :func:`ingest_table`."""
    return ParquetUsageRepository(repo, lambda table: ingest_table(table, repo).accepted)


def _connect(repo: RepoPaths) -> duckdb.DuckDBPyConnection:
    """A connection whose working memory is bounded (``$USAGE_FEATURES_MEMORY_LIMIT``, see
    :func:`~usage_features.adapters.duckdb_connection.memory_limit_bytes`); beyond it DuckDB
    spills to ``DIR/data/.spill``."""
    return connect(spill_to=repo.data / ".spill")


def _ingest(con, sources: dict[Path | None, Input], repo, rules: Rules, on_rows,
            all_or_nothing=False) -> IngestSummary:
    create_staging_table(con)
    for index, source in enumerate(sources.values()):
        if source.relation is not None:
            stage_parquet(con, index, source, rules, on_rows)
        else:
            stage(con, index, source, rules, on_rows)
    number_identical_rows(con, [i for i, s in enumerate(sources.values())
                                if "event_id" in s.absent])
    log = EventLog(repo)
    with log.write_lock():
        index = EventIdIndex(log.root)
        _classify(con, log, index)
        summary = _summarise(con)
        summary.unlisted_by_name = _unlisted(con, rules)
        if all_or_nothing and summary.rejected:
            _refuse(con, summary)
        summary.quarantine_files = _write_quarantine(con, list(sources), repo)
        if summary.accepted:
            _commit_accepted(con, log, list(sources))
            index.sync(con, log.files())  # (killed before this: the next sync does it)
    return summary


def _unlisted(con, rules: Rules) -> dict[str, int]:
    """Rows per event name the vocabulary does not declare, most frequent first."""
    declared = ", ".join(sql_string(n) for n in rules.vocabulary.names)
    name = f"lower({stripped('raw_event_type')})"
    rows = con.execute(f"""
        SELECT name, count(*) FROM (
            SELECT coalesce(event_type, {name}) AS name FROM staged)
        WHERE coalesce(name, '') <> '' AND name NOT IN ({declared})
        GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()
    return dict(rows)


def _refuse(con, summary: IngestSummary) -> None:
    if "conflicting_event_id" in summary.rejected_by_reason:
        ids = con.execute("SELECT s.event_id FROM special JOIN staged s "
                          "USING (file_index, source_row) WHERE status = 'conflict' LIMIT 3")
        raise ConflictingEventError(
            "event(s) already stored with different values, e.g. "
            + ", ".join(row[0] for row in ids.fetchall())
        )
    raise ValueError(f"invalid event(s), nothing stored: {summary.rejected_by_reason}")


def _classify(con: duckdb.DuckDBPyConnection, log: EventLog, index: EventIdIndex) -> None:
    """``special``: the valid rows whose id repeats in the input or is already stored, with
    status ``accepted`` (first of a new id), ``duplicate`` or ``conflict``. Every other valid
    row is accepted without a sort or an aggregate of the whole input's rows.

    Repeated ids are rare: the candidates are the ids whose 64-bit hash repeats (a sort of
    8-byte values; an aggregate of every id spilled at 10^8 events), checked on the ids.
    Stored ids are found through the log's id index (:func:`_stored_matches`), in proportion
    to the input's rows, not the log's."""
    run(con, """CREATE TABLE repeated AS
        WITH hashes AS (SELECT hash(event_id) AS h FROM staged WHERE reason IS NULL),
        candidates AS (SELECT h FROM (SELECT h, lead(h) OVER (ORDER BY h) AS next FROM hashes)
                       WHERE h = next)
        SELECT event_id FROM staged
        WHERE reason IS NULL AND hash(event_id) IN (SELECT h FROM candidates)
        GROUP BY event_id HAVING count(*) > 1""")
    _stored_matches(con, log, index)
    columns = ", ".join(f"{c} AS ref_{c}" for c in EVENT_COLUMNS)
    run(con, f"""
        CREATE TABLE special AS
        WITH ranked AS (
            SELECT file_index, source_row, {_COMPARED}, row_number() OVER (
                PARTITION BY event_id ORDER BY file_index, source_row) AS occurrence
            FROM staged SEMI JOIN repeated USING (event_id)
            WHERE reason IS NULL),
        single AS (
            SELECT file_index, source_row, {_COMPARED}, 1 AS occurrence
            FROM staged SEMI JOIN stored USING (event_id) ANTI JOIN repeated USING (event_id)
            WHERE reason IS NULL),
        v AS (SELECT * FROM ranked UNION ALL SELECT * FROM single),
        ref AS (
            SELECT {columns}, true AS is_stored FROM stored
            UNION ALL BY NAME
            SELECT {columns}, false AS is_stored
            FROM ranked ANTI JOIN stored USING (event_id) WHERE occurrence = 1)
        SELECT v.file_index, v.source_row, CASE
            WHEN v.occurrence = 1 AND NOT ref.is_stored THEN 'accepted'
            WHEN {_SAME_VALUES} THEN 'duplicate'
            ELSE 'conflict' END AS status
        FROM v JOIN ref ON v.event_id = ref.ref_event_id""")
    run(con, "CREATE TABLE dropped AS SELECT file_index, source_row, status FROM special "
             "WHERE status <> 'accepted'")


def _stored_matches(con: duckdb.DuckDBPyConnection, log: EventLog,
                    index: EventIdIndex) -> None:
    """``stored``: the stored rows whose id is a valid staged row's. The index names the rows
    whose id hashes alike (brought up to date with the log first); only those rows are read
    (the vectors of their row groups holding them), and compared on the id itself: a hash
    collision is no match."""
    files = log.files()
    index.sync(con, files)
    try:
        rows = _indexed_rows(con, index)
    except DamagedIndexError as exc:  # found by a block's checksum: rebuilt from the log
        index.rebuild(con, files, exc.problem)
        rows = _indexed_rows(con, index)
    candidates = rows_sql(log.root, rows)
    if candidates is None:
        run(con, f"CREATE TABLE stored AS SELECT {_COMPARED} FROM staged WHERE false")
        return
    run(con, f"""CREATE TABLE stored AS SELECT * FROM ({candidates})
                 WHERE event_id IN (SELECT event_id FROM staged WHERE reason IS NULL)""")


def _indexed_rows(con: duckdb.DuckDBPyConnection, index: EventIdIndex
                  ) -> dict[str, np.ndarray]:
    """The index's answer for every valid staged id: log file -> rows. The ids' hashes are
    looked up :data:`LOOKUP_BATCH` at a time, never gathered whole (an input of 10^8 events
    ran out of memory); an empty index is not asked."""
    if not index.entries:
        return {}
    found: dict[str, list[np.ndarray]] = {}
    with con.sql(f"SELECT {index.hash_sql.format('event_id')} AS h FROM staged "
                 "WHERE reason IS NULL").to_arrow_reader(LOOKUP_BATCH) as batches:
        for batch in batches:  # (closed on a damaged block: the connection rebuilds)
            for name, rows in index.lookup(batch.column(0).to_numpy()).items():
                found.setdefault(name, []).append(rows)
    return {name: sorted_unique(np.concatenate(parts)) for name, parts in found.items()}


def _summarise(con: duckdb.DuckDBPyConnection) -> IngestSummary:
    (read, invalid, valid), = con.execute(
        "SELECT count(*), count(reason), count(*) - count(reason) FROM staged").fetchall()
    statuses = dict(con.execute("SELECT status, count(*) FROM dropped GROUP BY 1").fetchall())
    reasons = con.execute(
        """SELECT reason, count(*) FROM (
               SELECT unnest(string_split(reason, ';')) AS reason FROM staged
               WHERE reason IS NOT NULL
               UNION ALL SELECT 'conflicting_event_id' FROM dropped WHERE status = 'conflict')
           GROUP BY 1 ORDER BY 2 DESC, 1"""
    ).fetchall()
    duplicates, conflicts = statuses.get("duplicate", 0), statuses.get("conflict", 0)
    return IngestSummary(read=read, accepted=valid - duplicates - conflicts,
                         rejected=invalid + conflicts, duplicates=duplicates,
                         rejected_by_reason=dict(reasons))


def _write_quarantine(con, sources: list[Path | None], repo: RepoPaths) -> list[str]:
    as_text = ", ".join(f"coalesce(s.{r}, CAST(s.{c} AS VARCHAR)) AS {c}"
                        for r, c in zip(RAW, EVENT_COLUMNS))
    rejected = f"""
        SELECT s.file_index, s.source_row, {as_text},
               coalesce(s.reason, 'conflicting_event_id') AS reason
        FROM staged s LEFT JOIN dropped d USING (file_index, source_row)
        WHERE s.reason IS NOT NULL OR d.status = 'conflict'"""
    counts = dict(con.execute(f"SELECT file_index, count(*) FROM ({rejected}) GROUP BY 1"
                              ).fetchall())
    written = []
    for index, path in enumerate(sources):
        if path is None or not counts.get(index):
            continue
        query = (f"SELECT {sql_string(path)} AS source_file, * EXCLUDE (file_index) "
                 f"FROM ({rejected}) WHERE file_index = {index} ORDER BY source_row")
        target = repo.quarantine / f"{path.stem}-{_digest(path)}.parquet"
        copy_atomically(con, query, target)
        written.append(str(target))
    return written


def _commit_accepted(con: duckdb.DuckDBPyConnection, log: EventLog,
                     inputs: list[Path | None]) -> None:
    """Write the accepted rows to a new batch of the log, then commit it. The rows are sorted
    and written in batches of whole days (:func:`_day_ranges`), so no step sorts the whole
    input: each ``event_date`` partition gets one file, its rows in customer order. The
    commit's manifest names, for each file, the ``inputs`` its rows came from."""
    accepted = ("FROM staged s ANTI JOIN dropped d USING (file_index, source_row) "
                "WHERE s.reason IS NULL")
    counted = con.execute(f"SELECT CAST(timestamp AS DATE) AS day, count(*), "
                          f"list(DISTINCT file_index ORDER BY file_index) {accepted} "
                          "GROUP BY day ORDER BY day").fetchall()
    days = [(day, n) for day, n, _ in counted]
    inputs_of = {f"event_date={day}": indexes for day, _, indexes in counted}
    sources = [{"path": str(Path(p).resolve()), "sha256": _digest(p, full=True)}
               if p is not None else {"path": None} for p in inputs]
    batch, staging = log.new_staging_dir()
    try:
        for k, (first, last) in enumerate(_day_ranges(days, COMMIT_ROWS)):
            # a range on the timestamp itself, so that DuckDB can skip row groups outside it
            in_range = (f"timestamp >= CAST({sql_string(str(first))} AS TIMESTAMPTZ) AND "
                        f"timestamp < CAST({sql_string(str(last + timedelta(days=1)))} "
                        "AS TIMESTAMPTZ)")
            run(con, f"""COPY (
                    SELECT {STAGED_EVENT}, CAST(timestamp AS DATE) AS event_date
                    {accepted} AND {in_range}
                    ORDER BY event_date, customer_id)
                TO {sql_string(staging)} (FORMAT parquet, PARTITION_BY (event_date),
                    FILENAME_PATTERN {sql_string(f"part-{batch}-{k}-{{i}}")},
                    ROW_GROUP_SIZE 16384, OVERWRITE_OR_IGNORE true)""")
        moves = {f: log.root / f.relative_to(staging) for f in staging.rglob("*.parquet")}
        log.commit(batch, moves, sources, {f: inputs_of[f.parent.name] for f in moves})
    except BaseException:
        log.discard(batch)
        raise


def _day_ranges(days: list[tuple[date, int]], limit: int) -> list[tuple[date, date]]:
    """(first, last) day of consecutive runs of ``days`` (day, rows; in order) holding at most
    ``limit`` rows each, unless one day alone holds more."""
    ranges: list[tuple[date, date]] = []
    rows = 0
    for day, count in days:
        if ranges and rows + count <= limit:
            ranges[-1] = (ranges[-1][0], day)
            rows += count
        else:
            ranges.append((day, day))
            rows = count
    return ranges


def _digest(path: Path, full: bool = False) -> str:
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return digest if full else digest[:16]


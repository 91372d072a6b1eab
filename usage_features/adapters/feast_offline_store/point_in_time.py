"""The point-in-time join: one DuckDB ``ASOF LEFT JOIN`` per feature view.

For an entity row ``(keys, t)`` a view contributes its latest row with ``timestamp <= t`` (ties
broken by the latest ``created_timestamp_column``), or nulls when there is none or that row is
older than ``t - ttl`` (``ttl`` 0/None: unlimited). Views without entities join on time alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.repo_config import RepoConfig

from usage_features.adapters.duckdb_connection import literal_path
from usage_features.adapters.feast_offline_store.sources import (
    ident,
    parquet_files,
    register_source,
    resolve_column,
    source_columns,
    source_path,
)
from usage_features.adapters.feature_tables import StoredTable, reading, recorded_files, table_key
from usage_features.adapters.key_index import KeyIndex, encode_keys, named_month_start_us
from usage_features.adapters.row_sidecar import Sidecar

ROW = "__entity_row"
TS = "__entity_ts"
#: A view row's timestamp. Not ``TS``: DuckDB 2.0.1 mis-joins an ``ASOF`` whose right side has a
#: ``QUALIFY`` over a column named like one of the left side (found by this store's tests).
FEATURE_TS = "__feature_ts"
CREATED = "__feature_created"
ROW_OF = "__row_of"
MATCH_TS = "__match_ts"
KEY_ID = "__key_id"
KEY_LATEST = "__key_latest"
FILE = "__file"
FILE_ROW = "__file_row"
#: Row sidecars are read when their files hold at least this many rows per entity row: a row
#: read (~1.5 us) costs about what scanning and joining 25 Parquet rows does (~60 ns each).
SIDECAR_ROWS_PER_ENTITY_ROW = 25
#: With key indexes pass 1 reads no Parquet file, and reading the matched rows by row beats a
#: scan of the feature columns until there are about as many entity rows as table rows.
KEYED_ROWS_PER_ENTITY_ROW = 1
#: A view whose files hold at most this many rows is joined in memory (:meth:`memory_rows`):
#: read whole, it costs less than DuckDB's plan and scan of the same rows.
MEMORY_ROWS = 1_000_000


@dataclass(frozen=True)
class ViewJoin:
    """What one feature view contributes: its view in DuckDB, keys, times and feature columns."""

    name: str
    alias: str
    keys: dict[str, str]           # view column -> entity frame column
    timestamp: str
    created: str | None
    features: list[tuple[str, str]]  # (view column, output column)
    ttl: timedelta | None
    files: tuple[Path, ...] = ()     # the source's Parquet files
    mapped: bool = False             # the source renames columns (its field mapping)
    #: The source is one of a repo's recorded feature tables: its files are checked before
    #: they are read (see :func:`checked`), against ``records`` (the build's, set there).
    table: StoredTable | None = None
    records: dict | None = None
    #: Where the view's DuckDB view comes from (:meth:`register`); None: registered already.
    source: tuple[RepoConfig, DataSource] | None = None

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make the source the DuckDB view ``alias`` (what the SQL joins read)."""
        if self.source is not None:
            register_source(con, *self.source, self.alias)

    def columns_read(self, features: bool = True) -> list[str]:
        """The source columns a join reads: keys, timestamps (and ``features``: the features)."""
        return list(dict.fromkeys([*self.keys, self.timestamp,
                                   *([self.created] if self.created else []),
                                   *((c for c, _ in self.features) if features else ())]))

    def check(self, columns: list[str]) -> None:
        """Check what reading ``columns`` of the files reads against the build's records (a
        source of a recorded table only; one that renames columns: every column)."""
        if self.table is not None:
            self.table.check(self.records, self.files, None if self.mapped else columns)

    def _record(self, path: Path) -> dict:
        return self.records[table_key(self.table.paths, path)]

    def relation(self) -> str:
        """The view's rows, one per (keys, timestamp): the latest created wins."""
        columns = list(dict.fromkeys([*self.keys, *(c for c, _ in self.features)]))
        stamp = f"CAST({ident(self.timestamp)} AS TIMESTAMPTZ)"
        select = ", ".join([*(ident(c) for c in columns), f"{stamp} AS {ident(FEATURE_TS)}"])
        sql = f"SELECT {select} FROM {ident(self.alias)}"
        if self.created:
            partition = ", ".join([*(ident(k) for k in self.keys), stamp])
            sql += (f" QUALIFY row_number() OVER (PARTITION BY {partition} "
                    f"ORDER BY {ident(self.created)} DESC NULLS LAST) = 1")
        return sql

    def pruned_join(self, alias: str, bounds: tuple[str, str] | None) -> str:
        """The ASOF join in two passes that read only what the entity rows can match.

        1. On the narrow relation (keys, timestamp) of the view's rows whose keys occur in the
           entity rows and whose timestamp is at most the latest entity timestamp (and, with a
           ``ttl``, at least the earliest minus the ttl): each entity row's matching timestamp.
        2. The feature columns of exactly those (keys, timestamp) rows, by a hash join whose
           small side (the matches) filters the scan.

        For views without a created column (one row per keys and timestamp, or ties that the
        ASOF join would break arbitrarily too: here the first match is kept).
        """
        matches = self.matches_sql(bounds)
        fetch_on = " AND ".join([*(f"f.{ident(key)} = m.{ident(col)}"
                                   for key, col in self.keys.items()),
                                 f"f.{ident(FEATURE_TS)} = m.{ident(MATCH_TS)}"])
        rows = f"SELECT * FROM ({self.relation()}) w{self._within(ident(FEATURE_TS), bounds)}"
        fetched = (f"SELECT m.{ident(ROW_OF)}, f.* FROM ({matches}) m JOIN ({rows}) f "
                   f"ON {fetch_on} QUALIFY row_number() OVER (PARTITION BY m.{ident(ROW_OF)}) = 1")
        return f"LEFT JOIN ({fetched}) {alias} ON {alias}.{ident(ROW_OF)} = e.{ident(ROW)}"

    def _within(self, stamp: str, bounds: tuple[str, str] | None, *more: str) -> str:
        """WHERE: ``more``, and ``stamp`` within what the entity rows can match."""
        where = list(more)
        if bounds is not None:
            low, high = bounds
            where.append(f"{stamp} <= {high}")
            if self.ttl is not None:
                micros = int(self.ttl / timedelta(microseconds=1))
                where.append(f"{stamp} >= {low} - INTERVAL '{micros} microseconds'")
        return f" WHERE {' AND '.join(where)}" if where else ""

    def matches_sql(self, bounds: tuple[str, str] | None, located: str | None = None) -> str:
        """Pass 1 of :meth:`pruned_join`: each entity row's (``ROW_OF``, keys, ``MATCH_TS``).
        ``located``: read the view's rows from this relation instead, which has the columns
        ``FILE`` (a file's number) and ``file_row_number``, and add them (the latter as
        ``FILE_ROW``)."""
        keys = list(self.keys.items())  # (view column, entity column)

        def same_keys(view: str, entity: str) -> str:
            return " AND ".join(f"{view}.{ident(key)} = {entity}.{ident(col)}"
                                for key, col in keys)

        # The entity rows' distinct keys, each numbered, with its latest entity time: the ASOF
        # join partitions and compares on that integer instead of the key values (text,
        # usually), and leaves out each key's rows after its latest entity time. Numbered in key
        # order, so that both places this subquery is evaluated number alike. Inner joins on
        # the keys leave out null keys, which match nothing.
        entity_keys = ", ".join(ident(col) for _, col in keys)
        numbered = (f"SELECT {entity_keys}, max({ident(TS)}) AS {ident(KEY_LATEST)}, "
                    f"row_number() OVER (ORDER BY {entity_keys}) AS {ident(KEY_ID)} "
                    f"FROM __entity GROUP BY {entity_keys}")
        stamp = f"CAST(v.{ident(self.timestamp)} AS TIMESTAMPTZ)"
        place = (f", v.{ident(FILE)}, v.file_row_number AS {ident(FILE_ROW)}"
                 if located else "")
        narrow = (f"SELECT k.{ident(KEY_ID)}, {stamp} AS {ident(FEATURE_TS)}{place} "
                  f"FROM {ident(located or self.alias)} v JOIN ({numbered}) k ON "
                  f"{same_keys('v', 'k')}"
                  + self._within(stamp, bounds, f"{stamp} <= k.{ident(KEY_LATEST)}"))
        entity = (f"SELECT e.{ident(ROW)}, e.{ident(TS)}, "
                  f"{', '.join(f'e.{ident(col)}' for _, col in keys)}, k.{ident(KEY_ID)} "
                  f"FROM __entity e JOIN ({numbered}) k ON "
                  + " AND ".join(f"e.{ident(col)} = k.{ident(col)}" for _, col in keys))
        found = f", r.{ident(FILE)}, r.{ident(FILE_ROW)}" if located else ""
        return (f"SELECT e.{ident(ROW)} AS {ident(ROW_OF)}, "
                f"{', '.join(f'e.{ident(col)}' for _, col in keys)}, "
                f"r.{ident(FEATURE_TS)} AS {ident(MATCH_TS)}{found} "
                f"FROM ({entity}) e ASOF JOIN ({narrow}) r ON e.{ident(KEY_ID)} = "
                f"r.{ident(KEY_ID)} AND e.{ident(TS)} >= r.{ident(FEATURE_TS)}")

    def sidecar_rows(self, con: duckdb.DuckDBPyConnection, bounds: tuple[str, str] | None,
                     entity: pa.Table) -> pa.Table | None:
        """:meth:`pruned_join`'s matches with pass 2 from the files' row sidecars
        (:mod:`~usage_features.adapters.row_sidecar`): the feature columns of just the matched
        rows, by file and row number, each with its entity row (``ROW_OF``) and time
        (``FEATURE_TS``). None, and the caller joins as usual, unless every file has
        a current sidecar holding the columns, the source renames no column, and the entity
        rows are few enough for reads by row to beat a scan (:data:`SIDECAR_ROWS_PER_ENTITY_ROW`;
        :data:`KEYED_ROWS_PER_ENTITY_ROW` where pass 1 is answered by the files' key indexes,
        :mod:`~usage_features.adapters.key_index`, instead of a scan).
        """
        columns = list(dict.fromkeys(c for c, _ in self.features))
        if self.mapped or not self.files:
            return None
        recorded, keyed = None, None
        if self.table is not None:  # the build's records: the rows, and each sidecar's record
            recorded = [self._record(f) for f in self.files]
            rows = sum(r["rows"] for r in recorded)
            if any("sidecar" not in r for r in recorded):
                return None
            keyed = self._keyed_matches(entity, recorded, rows)
            if keyed is None:
                if SIDECAR_ROWS_PER_ENTITY_ROW * entity.num_rows > rows:
                    return None
                self.check(self.columns_read(features=False))  # what pass 1 reads, first
        cars = [Sidecar.open(f, recorded[i]["sidecar"] if recorded else None)
                for i, f in enumerate(self.files)]
        try:
            scanned = keyed is None
            if (any(c is None for c in cars)
                    or (scanned and SIDECAR_ROWS_PER_ENTITY_ROW * entity.num_rows
                        > sum(c.rows for c in cars))
                    or any(not {*columns, self.timestamp} <= set(c.names)
                           or {FILE, "file_row_number"} & set(c.names) for c in cars)):
                return None
            matches = keyed if not scanned else self._scanned_matches(con, bounds, entity)
            if not all(c.is_current() for c in cars):  # a file replaced while it was read
                return None
            files = matches.column(FILE).to_numpy()
            rows = matches.column(FILE_ROW).to_numpy()
            parts = []
            for index in np.unique(files) if len(files) else [0]:
                at = np.flatnonzero(files == index)
                part = cars[index].take(rows[at], columns)
                parts.append(part.append_column(ROW_OF, matches.column(ROW_OF).take(at))
                             .append_column(FEATURE_TS, matches.column(MATCH_TS).take(at)))
            return pa.concat_tables(parts)
        finally:
            for car in cars:
                if car is not None:
                    car.close()

    def memory_rows(self, entity: pa.Table) -> pa.Table | None:
        """What :meth:`sidecar_rows` gives, for a small view (at most :data:`MEMORY_ROWS`
        rows): its files read whole, each entity row's latest row at or before its time found
        by binary search within its key's rows (null keys and times match nothing; of rows tied
        on key and time, one). None, and the caller joins as usual, for a view of another
        shape: more rows, more than one key, a renamed column, keys of different types on the
        two sides, or a timestamp column that is not a timestamp."""
        if self.mapped or len(self.keys) != 1 or not self.files:
            return None
        if self.table is not None:
            rows = sum(self._record(f)["rows"] for f in self.files)
        else:
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)
        if rows > MEMORY_ROWS:
            return None
        (key, column), = self.keys.items()
        wanted = self.columns_read()
        self.check(wanted)
        try:
            table = pa.concat_tables([pq.read_table(f, columns=wanted) for f in self.files])
        except (pa.ArrowInvalid, KeyError):  # files of different schemas: DuckDB unites them
            return None
        keys, stamps, asked = table.column(key), table.column(self.timestamp), entity.column(column)
        if _is_text(keys.type) and _is_text(asked.type):
            asked = asked.cast(keys.type)
        if keys.type != asked.type or not pa.types.is_timestamp(stamps.type):
            return None
        keep = np.flatnonzero(pc.and_(keys.is_valid(), stamps.is_valid()).to_numpy(
            zero_copy_only=False))
        table = table.take(keep)
        codes, found = _codes(table.column(key), asked)
        times = _floor_micros(table.column(self.timestamp))
        order = np.lexsort((times, codes))
        codes, times = codes[order], times[order]
        at = _floor_micros(entity.column(TS))
        first = np.searchsorted(codes, found, side="left")
        low, high = first.copy(), np.searchsorted(codes, found, side="right")
        while (searching := low < high).any():  # the first of the key's rows after `at`
            middle = (low + high) // 2
            after = searching & (times[np.minimum(middle, len(times) - 1)] > at)
            high = np.where(after, middle, high)
            low = np.where(searching & ~after, middle + 1, low)
        valid = entity.column(TS).is_valid().to_numpy(zero_copy_only=False)
        matched = np.flatnonzero((found >= 0) & valid & (low > first))
        at_row = order[low[matched] - 1]
        return pa.table({
            **{c: table.column(c).take(at_row) for c, _ in self.features},
            ROW_OF: entity.column(ROW).take(matched),
            FEATURE_TS: pa.array(times[low[matched] - 1], pa.timestamp("us", tz="UTC")),
        })

    def _scanned_matches(self, con: duckdb.DuckDBPyConnection,
                         bounds: tuple[str, str] | None, entity: pa.Table) -> pa.Table:
        """Pass 1 by DuckDB over the files' keys and times, with each match's file and row."""
        con.register("__entity", entity)
        # each file's rows with its index in self.files (a number: no path per row)
        for i, path in enumerate(self.files):
            con.read_parquet(literal_path(path), file_row_number=True).create_view(
                f"{self.alias}__file{i}", replace=True)
        located = f"{self.alias}__located"
        files = " UNION ALL BY NAME ".join(
            f"SELECT *, {i} AS {ident(FILE)} FROM {ident(f'{self.alias}__file{i}')}"
            for i in range(len(self.files)))
        con.execute(f"CREATE OR REPLACE VIEW {ident(located)} AS {files}")
        return con.sql(self.matches_sql(bounds, located)).to_arrow_table()

    def _keyed_matches(self, entity: pa.Table, recorded: list[dict], rows: int
                       ) -> pa.Table | None:
        """Pass 1 from the files' key indexes (the same rows as :meth:`_scanned_matches`, as
        DuckDB's ``ASOF JOIN`` finds them); None where they cannot answer it: a file without
        an index, another key or time column, entity keys that are not plain strings, or more
        entity rows than :data:`KEYED_ROWS_PER_ENTITY_ROW` allows."""
        if (len(self.keys) != 1 or any(not r.get("keys") for r in recorded)
                or KEYED_ROWS_PER_ENTITY_ROW * entity.num_rows > rows):
            return None
        (key, column), = self.keys.items()
        keys = encode_keys(entity.column(column))
        if keys is None:
            return None
        # newest month first, each index read (and checked) only when its month is reached:
        # months after every entity time, and months older than every match, are not read
        months = [named_month_start_us(path) for path in self.files]
        if None in months:
            return None
        at = _floor_micros(entity.column(TS))
        latest = int(at.max()) if len(at) else -1
        file = np.full(len(keys), -1, dtype=np.int64)
        row = np.full(len(keys), -1, dtype=np.int64)
        stamp = np.full(len(keys), -1, dtype=np.int64)
        open_rows = np.arange(len(keys))
        for number in sorted(range(len(months)), key=lambda n: -months[n]):
            if months[number] > latest:  # holds no row at or before any entity time
                continue
            index = KeyIndex.read(self.files[number], recorded[number]["keys"])
            if (index.key, index.timestamp, index.month_start_us) != (
                    key, self.timestamp, months[number]):
                return None
            found, times = index.latest(keys[open_rows], at[open_rows])
            hit = found >= 0
            file[open_rows[hit]], row[open_rows[hit]] = number, found[hit]
            stamp[open_rows[hit]] = times[hit]
            open_rows = open_rows[~hit]
            if not len(open_rows):
                break
        matched = np.flatnonzero((file >= 0) & entity.column(column).is_valid().to_numpy(
            zero_copy_only=False))
        return pa.table({
            ROW_OF: entity.column(ROW).take(matched),
            column: entity.column(column).take(matched),
            MATCH_TS: pa.array(stamp[matched], pa.timestamp("us", tz="UTC")),
            FILE: pa.array(file[matched], pa.int32()),
            FILE_ROW: pa.array(row[matched], pa.int64()),
        })

    def cutoff_join(self, alias: str) -> str:
        """Feast's ``filter_by_created_timestamp``: only rows created at or before the entity
        timestamp are candidates (a range join, so only used when asked for)."""
        columns = list(dict.fromkeys([*self.keys, *(c for c, _ in self.features)]))
        rows = ", ".join([*(ident(c) for c in columns),
                          f"CAST({ident(self.timestamp)} AS TIMESTAMPTZ) AS {ident(FEATURE_TS)}",
                          f"CAST({ident(self.created)} AS TIMESTAMPTZ) AS {ident(CREATED)}"])
        on = [f"e.{ident(col)} = r.{ident(key)}" for key, col in self.keys.items()]
        on += [f"r.{ident(FEATURE_TS)} <= e.{ident(TS)}", f"r.{ident(CREATED)} <= e.{ident(TS)}"]
        latest = (f"QUALIFY row_number() OVER (PARTITION BY e.{ident(ROW)} ORDER BY "
                  f"r.{ident(FEATURE_TS)} DESC, r.{ident(CREATED)} DESC) = 1")
        candidates = (f"SELECT e.{ident(ROW)} AS {ident(ROW_OF)}, r.* FROM __entity e "
                      f"JOIN (SELECT {rows} FROM {ident(self.alias)}) r ON {' AND '.join(on)} "
                      f"{latest}")
        return f"LEFT JOIN ({candidates}) {alias} ON {alias}.{ident(ROW_OF)} = e.{ident(ROW)}"


def plan_view(config: RepoConfig, view: FeatureView, feature_refs: list[str],
              full_feature_names: bool, alias: str) -> ViewJoin:
    """Describe ``view``'s join; its source becomes the DuckDB view ``alias`` only if a join
    reads it by SQL (:meth:`ViewJoin.register`)."""
    source = view.batch_source
    columns = source_columns(config, source)
    prefix = view.projection.name_to_use()
    wanted = [r.split(":", 1)[1] for r in feature_refs if r.split(":", 1)[0] == prefix]
    base = view.projection.name_alias or view.name
    key_map = view.projection.join_key_map or {}
    keys = {resolve_column(e.name, columns, source, "join key"): key_map.get(e.name, e.name)
            for e in view.entity_columns}
    created = source.created_timestamp_column
    return ViewJoin(
        name=view.projection.name_to_use(),
        alias=alias,
        keys=keys,
        timestamp=resolve_column(source.timestamp_field, columns, source, "timestamp"),
        created=resolve_column(created, columns, source, "created timestamp") if created else None,
        features=[(resolve_column(f, columns, source, "feature"),
                   f"{base}__{f}" if full_feature_names else f) for f in wanted],
        ttl=view.ttl if view.ttl and view.ttl > timedelta(0) else None,
        files=parquet_files(source_path(config, source)),
        mapped=any(old != new for old, new in source.field_mapping.items()),
        table=StoredTable.of(config.repo_path, source_path(config, source)),
        source=(config, source),
    )


@contextmanager
def checked(views: list[ViewJoin]) -> Iterator[list[ViewJoin]]:
    """``views`` ready to be read: those of a repo's recorded tables with their files listed
    afresh and checked to be exactly the recorded ones, and the records to check their content
    against (:meth:`ViewJoin.check`, before each read). Holds the tables lock shared for the
    block, so no build moves files in meanwhile
    (:mod:`usage_features.adapters.feature_tables`)."""
    tables = [v.table for v in views if v.table is not None]
    if not tables:
        yield views
        return
    with reading(tables[0].paths):
        records = recorded_files(tables[0].paths)
        yield [v if v.table is None else replace(v, files=tuple(v.table.files(records)),
                                                 records=records) for v in views]


def join(con: duckdb.DuckDBPyConnection, entity: pa.Table, views: list[ViewJoin],
         created_cutoff: bool = False, prune: bool = True) -> pa.Table:
    """The feature columns for ``entity`` (columns ``ROW``, ``TS`` and the join keys), in row order.

    ``entity[ROW]`` must be 0..n-1; row i of the result belongs to entity row i.
    ``created_cutoff``: Feast's ``filter_by_created_timestamp`` (views with a created column).
    ``prune``: keyed views without a created column read only the rows the entity rows can
    match (:meth:`ViewJoin.pruned_join`); ``False`` joins every row (the tests compare both).
    The files of a repo's recorded tables are checked as they are read (:func:`checked`).
    """
    with checked(views) as views:
        return _join(con, entity, views, created_cutoff, prune)


def _join(con: duckdb.DuckDBPyConnection, entity: pa.Table, views: list[ViewJoin],
          created_cutoff: bool, prune: bool) -> pa.Table:
    bounds = _entity_time_bounds(entity)
    fetched: dict[str, pa.Table | None] = {}
    for view in views:  # pass 2 by row where the view allows it: from sidecars, else in memory
        if prune and view.keys and not view.created:
            rows = view.sidecar_rows(con, bounds, entity)
            fetched[view.alias] = rows if rows is not None else view.memory_rows(entity)
    # the views whose sidecar rows come out of a join as they are put together here, the rest
    # joined by DuckDB; the columns then in the views' order
    assembled = {alias: rows for alias, rows in fetched.items() if rows is not None and all(
        _same_through_duckdb(rows.schema.field(c).type) for c in rows.column_names)}
    joined = _sql_join(con, entity, [v for v in views if v.alias not in assembled], bounds,
                       fetched, created_cutoff, prune)
    parts = {v.alias: _assemble(entity, v, assembled[v.alias]) for v in views
             if v.alias in assembled}
    from_sql = iter(joined.columns)
    columns, names = [], []
    for view in views:
        part = parts.get(view.alias)
        columns += part.columns if part is not None else [next(from_sql) for _ in view.features]
        names += [output for _, output in view.features]
    return pa.table(columns, names=names)


def _sql_join(con: duckdb.DuckDBPyConnection, entity: pa.Table, views: list[ViewJoin],
              bounds: tuple[str, str] | None, fetched: dict[str, pa.Table | None],
              created_cutoff: bool, prune: bool) -> pa.Table:
    """The feature columns of ``views`` by one DuckDB query (the rows ``fetched`` from
    sidecars joined by entity row); none without views."""
    if not views:
        return pa.table({})
    con.register("__entity", entity)
    selects, joins, params = [f"e.{ident(ROW)}"], [], {}
    for view in views:
        if fetched.get(view.alias) is None:  # joined from its source: DuckDB reads it
            view.register(con)
        a = ident(view.alias + "__j")
        if created_cutoff and view.created:
            view.check(view.columns_read())
            joins.append(view.cutoff_join(a))
        elif fetched.get(view.alias) is not None:
            con.register(f"{view.alias}__fetched", fetched[view.alias])
            joins.append(f"LEFT JOIN {ident(view.alias + '__fetched')} {a} "
                         f"ON {a}.{ident(ROW_OF)} = e.{ident(ROW)}")
        elif prune and view.keys and not view.created:
            view.check(view.columns_read())
            joins.append(view.pruned_join(a, bounds))
        else:
            view.check(view.columns_read())
            on = [f"e.{ident(col)} = {a}.{ident(key)}" for key, col in view.keys.items()]
            on.append(f"e.{ident(TS)} >= {a}.{ident(FEATURE_TS)}")
            joins.append(f"ASOF LEFT JOIN ({view.relation()}) {a} ON {' AND '.join(on)}")
        fresh = None
        if view.ttl is not None:
            params[f"ttl_{view.alias}"] = view.ttl
            fresh = f"{a}.{ident(FEATURE_TS)} >= e.{ident(TS)} - ${'ttl_' + view.alias}"
        for column, output in view.features:
            value = f"{a}.{ident(column)}"
            if fresh:
                value = f"CASE WHEN {fresh} THEN {value} END"
            selects.append(f"{value} AS {ident(output)}")
    sql = (f"SELECT {', '.join(selects)} FROM __entity e {' '.join(joins)} "
           f"ORDER BY e.{ident(ROW)}")
    result = con.sql(sql, params=params or None).to_arrow_table()
    if result.num_rows != entity.num_rows:
        raise RuntimeError(f"point-in-time join returned {result.num_rows} rows for "
                           f"{entity.num_rows} entity rows")
    return result.drop_columns([ROW])


def _assemble(entity: pa.Table, view: ViewJoin, rows: pa.Table) -> pa.Table:
    """``view``'s feature columns from its sidecar ``rows``, without DuckDB: each entity row
    takes its fetched row (``ROW_OF``), null where there is none or, with a ``ttl``, where that
    row is older than the entity time minus the ttl; the same types and values the SQL join
    gives (for the types :func:`_same_through_duckdb` names)."""
    of = rows.column(ROW_OF).to_numpy()
    where = np.full(entity.num_rows, -1, dtype=np.int64)
    where[of] = np.arange(len(of))
    if view.ttl is not None:
        oldest = _floor_micros(entity.column(TS))[of] - view.ttl // timedelta(microseconds=1)
        where[of[_floor_micros(rows.column(FEATURE_TS)) < oldest]] = -1
    index = pa.array(where, mask=where < 0)
    return pa.table([rows.column(c).take(index) for c, _ in view.features],
                    names=[output for _, output in view.features])


def _codes(view_keys: pa.ChunkedArray, entity_keys: pa.ChunkedArray
           ) -> tuple[np.ndarray, np.ndarray]:
    """The view rows' keys and the entity rows' as numbers: the same key the same number, an
    entity key no view row has (or null) -1."""
    distinct = pc.unique(view_keys)
    return (pc.index_in(view_keys, value_set=distinct).to_numpy(zero_copy_only=False),
            pc.fill_null(pc.index_in(entity_keys, value_set=distinct), -1).to_numpy(
                zero_copy_only=False))


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _same_through_duckdb(kind: pa.DataType) -> bool:
    """Whether a column of ``kind`` comes out of a DuckDB join as it went in (type and values):
    booleans, integers, 32- and 64-bit floats, ``date32``, ``string``, ``binary``, timestamps
    without a time zone, and UTC ones to the microsecond or nanosecond (DuckDB turns other
    zones and units into ``timestamp[us, UTC]``, ``date64`` into ``date32``, ``large_string``
    into ``string``, durations into intervals)."""
    if pa.types.is_timestamp(kind):
        return kind.tz is None or (kind.tz == "UTC" and kind.unit in ("us", "ns"))
    return (pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_date32(kind)
            or kind in (pa.float32(), pa.float64(), pa.string(), pa.binary()))


def _floor_micros(times: pa.ChunkedArray) -> np.ndarray:
    """Timestamps as int64 epoch microseconds, rounded down (a time between two microseconds
    is after the earlier one)."""
    unit = times.type.unit
    raw = times.cast(pa.timestamp(unit, tz="UTC")).to_numpy().view("int64")
    per = {"s": None, "ms": None, "us": 1, "ns": 1000}[unit]
    if per is None:
        return raw * {"s": 1_000_000, "ms": 1000}[unit]
    return np.floor_divide(raw, per)


def _entity_time_bounds(entity: pa.Table) -> tuple[str, str] | None:
    """The entity rows' earliest and latest timestamps as SQL literals (literals, not
    parameters, so that DuckDB prunes Parquet row groups with them); None without any."""
    bounds = pc.min_max(entity.column(TS))
    if not bounds["min"].is_valid:
        return None
    return tuple(f"TIMESTAMPTZ '{bounds[end].as_py().isoformat()}'" for end in ("min", "max"))


def range_rows(con: duckdb.DuckDBPyConnection, views: list[ViewJoin], start, end,
               ts_column: str) -> pa.Table:
    """Entity rows for retrieval without an entity frame: every distinct (keys, timestamp) of
    the views' rows with ``start <= timestamp <= end``, ordered by time then keys."""
    with checked(views) as views:
        for view in views:
            view.check(view.columns_read(features=False))
        return _range_rows(con, views, start, end, ts_column)


def _range_rows(con: duckdb.DuckDBPyConnection, views: list[ViewJoin], start, end,
                ts_column: str) -> pa.Table:
    keyed = [v for v in views if v.keys]
    key_sets = {tuple(v.keys.values()) for v in keyed}
    if len({frozenset(k) for k in key_sets}) > 1:
        raise ValueError("retrieval without an entity frame needs feature views with the same "
                         f"join keys, got {sorted(key_sets)}")
    keys = list(next(iter(key_sets))) if key_sets else []
    for view in views:
        view.register(con)
    parts = []
    for view in keyed or views:
        by_entity = {col: key for key, col in view.keys.items()}
        columns = [f"{ident(by_entity[k])} AS {ident(k)}" for k in keys]
        stamp = f"{ident(FEATURE_TS)} AS {ident(TS)}"
        parts.append(f"SELECT DISTINCT {', '.join([*columns, stamp])} FROM ({view.relation()})"
                     f" WHERE {ident(FEATURE_TS)} BETWEEN $start AND $end")
    order = ", ".join([ident(TS), *(ident(k) for k in keys)])
    out = [*(ident(k) for k in keys), f"{ident(TS)} AS {ident(ts_column)}"]
    sql = f"SELECT {', '.join(out)} FROM ({' UNION '.join(parts)}) ORDER BY {order}"
    return con.sql(sql, params={"start": start, "end": end}).to_arrow_table()

"""The offline store: entity frames in, point-in-time-correct features out, DuckDB underneath."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.file_source import FileLoggingDestination
from feast.infra.offline_stores.offline_store import (
    OfflineStore,
    RetrievalJob,
    RetrievalMetadata,
)
from feast.infra.offline_stores.offline_utils import (
    DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL,
    infer_event_timestamp_from_entity_df,
)
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from feast.utils import compute_non_entity_date_range

from usage_features.adapters.duckdb_connection import connect
from usage_features.adapters.feast_offline_store import point_in_time as pit
from usage_features.adapters.feast_offline_store import writes
from usage_features.adapters.feast_offline_store.job import DuckDBAsOfRetrievalJob
from usage_features.adapters.feast_offline_store.sources import (
    file_source,
    ident,
    local_path,
    register_source,
    source_path,
)
from usage_features.adapters.feature_tables import StoredTable, reading, recorded_files

TYPE = "usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore"


class LazyConnection:
    """A DuckDB connection (:func:`connect`) opened when first used: a retrieval answered from
    row sidecars and in memory never opens one."""

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    def __getattr__(self, name: str):
        if self._con is None:
            self._con = connect()
        return getattr(self._con, name)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()


class DuckDBAsOfOfflineStoreConfig(FeastConfigBaseModel):
    """Config of :class:`DuckDBAsOfOfflineStore` (no options beyond the type)."""

    type: Literal["usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore"] = TYPE


class DuckDBAsOfOfflineStore(OfflineStore):
    """Point-in-time joins over local Parquet ``FileSource``s with DuckDB ``ASOF LEFT JOIN``."""

    supports_filter_by_created_timestamp = True

    @staticmethod
    def get_historical_features(config: RepoConfig, feature_views: list[FeatureView],
                                feature_refs: list[str], entity_df: pd.DataFrame | str | None,
                                registry, project: str, full_feature_names: bool = False,
                                **kwargs: Any) -> RetrievalJob:
        created_cutoff = bool(kwargs.get("filter_by_created_timestamp"))
        # the connection the deferred query runs on: the job owns it (closed by its close(),
        # or when it is collected); closed here if the job is never made
        con = LazyConnection()
        try:
            views = [pit.plan_view(config, view, feature_refs, full_feature_names, f"v{i}")
                     for i, view in enumerate(feature_views)]
            if entity_df is None:
                start, end = _date_range(feature_views, kwargs)
                entity = pit.range_rows(con, views, start, end,
                                        DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL)
                ts_column = DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL
            elif isinstance(entity_df, str):
                _register_named_sources(con, config, feature_views, registry, project)
                entity = con.sql(entity_df).to_arrow_table()
                ts_column = _timestamp_column(entity.schema)
            elif isinstance(entity_df, pd.DataFrame):
                ts_column = infer_event_timestamp_from_entity_df(
                    dict(zip(entity_df.columns, entity_df.dtypes)))
                entity = pa.Table.from_pandas(entity_df, preserve_index=False)
            else:
                raise ValueError("DuckDBAsOfOfflineStore takes the entity rows as a pandas "
                                 "DataFrame, a DuckDB SQL string or None, not "
                                 f"{type(entity_df)}")
            stamps = pd.to_datetime(entity.column(ts_column).to_pandas(), utc=True)
            join_input = _join_input(entity, stamps, views)

            def query() -> pa.Table:
                features = pit.join(con, join_input, views, created_cutoff)
                out = entity
                for name, column in zip(features.column_names, features.columns):
                    out = out.append_column(name, column)
                return out

            if entity_df is None:
                low, high = start, end
            else:
                low, high = (stamps.min(), stamps.max()) if len(stamps) else (None, None)
            metadata = RetrievalMetadata(
                features=feature_refs, keys=[c for c in entity.column_names if c != ts_column],
                min_event_timestamp=low, max_event_timestamp=high)
            odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
            return DuckDBAsOfRetrievalJob(query, full_feature_names, odfvs, metadata,
                                          config.repo_path, close=con.close)
        except BaseException:
            con.close()
            raise

    @staticmethod
    def pull_latest_from_table_or_query(config: RepoConfig, data_source: DataSource,
                                        join_key_columns: list[str],
                                        feature_name_columns: list[str],
                                        timestamp_field: str,
                                        created_timestamp_column: str | None,
                                        start_date: datetime, end_date: datetime
                                        ) -> RetrievalJob:
        order = ", ".join(f"{ident(c)} DESC" for c in (timestamp_field, created_timestamp_column)
                          if c)
        keys = ", ".join(ident(k) for k in join_key_columns)
        partition = f"PARTITION BY {keys} " if keys else ""
        latest = f"QUALIFY row_number() OVER ({partition}ORDER BY {order}) = 1"
        return _pull(config, data_source, join_key_columns, feature_name_columns,
                     timestamp_field, created_timestamp_column, start_date, end_date, latest)

    @staticmethod
    def pull_all_from_table_or_query(config: RepoConfig, data_source: DataSource,
                                     join_key_columns: list[str],
                                     feature_name_columns: list[str], timestamp_field: str,
                                     created_timestamp_column: str | None = None,
                                     start_date: datetime | None = None,
                                     end_date: datetime | None = None, **_: Any
                                     ) -> RetrievalJob:
        return _pull(config, data_source, join_key_columns, feature_name_columns,
                     timestamp_field, created_timestamp_column, start_date, end_date, "")

    @staticmethod
    def offline_write_batch(config: RepoConfig, feature_view: FeatureView, table: pa.Table,
                            progress=None) -> None:
        """Append ``table`` to the view's ``FileSource`` (file or directory), schema checked.

        Feast hands the rows over with the source's field mapping applied; they are written
        under the source's own column names.
        """
        source = feature_view.batch_source
        unmapped = {new: old for old, new in source.field_mapping.items()}
        table = table.rename_columns([unmapped.get(c, c) for c in table.column_names])
        path = source_path(config, source)
        writes.append(table, path, f"offline write to {feature_view.name}")
        if progress:
            progress(table.num_rows)

    @staticmethod
    def write_logged_features(config: RepoConfig, data: pa.Table | Path, source,
                              logging_config, registry) -> None:
        """Write logged feature rows as a new Parquet file under the file destination."""
        destination = logging_config.destination
        if not isinstance(destination, FileLoggingDestination):
            raise ValueError("DuckDBAsOfOfflineStore logs only to a FileLoggingDestination, "
                             f"got {type(destination).__name__}")
        table = pq.read_table(data) if isinstance(data, Path) else data
        writes.write_log(table, local_path(config.repo_path, destination.path),
                         destination.partition_by)


def _date_range(feature_views, kwargs):
    return compute_non_entity_date_range(feature_views, start_date=kwargs.get("start_date"),
                                         end_date=kwargs.get("end_date"))


def _timestamp_column(schema: pa.Schema) -> str:
    """Feast's rule for entity frames, on an Arrow schema."""
    if DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL in schema.names:
        return DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL
    stamps = [f.name for f in schema if pa.types.is_timestamp(f.type)]
    if len(stamps) != 1:
        raise ValueError("the entity rows need a column named event_timestamp or exactly one "
                         f"timestamp column, got {schema.names}")
    return stamps[0]


def _join_input(entity: pa.Table, stamps: pd.Series, views) -> pa.Table:
    """Row number, UTC timestamp and the join keys: all DuckDB needs of the entity rows."""
    columns = {pit.ROW: pa.array(range(entity.num_rows), pa.int64()),
               pit.TS: pa.array(stamps).cast(pa.timestamp("us", tz="UTC"), safe=False)}
    for view in views:
        for column in view.keys.values():
            if column not in entity.column_names:
                raise ValueError(f"the entity rows have no column {column!r} (a join key of "
                                 f"feature view {view.name!r}); columns: "
                                 f"{entity.column_names}")
            columns.setdefault(column, entity.column(column))
    return pa.table(columns)


def _register_named_sources(con, config, feature_views, registry, project) -> None:
    """Make every FileSource of the project (and of the views) a view named after the source."""
    sources = {v.batch_source.name: v.batch_source for v in feature_views}
    try:
        listed = registry.list_data_sources(project, allow_cache=True)
    except Exception:  # a registry without the listing still serves the views' own sources
        listed = []
    for source in listed:
        sources.setdefault(source.name, source)
    for name, source in sources.items():
        try:
            file_source(source)
            if source_path(config, source).exists():
                register_source(con, config, source, name)
        except ValueError:
            continue


def _pull(config, source, keys, features, ts, created, start, end, qualify) -> RetrievalJob:
    columns = ", ".join(ident(c) for c in [*keys, *features, ts, *([created] if created else [])])
    where = []
    if start is not None:
        where.append(f"CAST({ident(ts)} AS TIMESTAMPTZ) >= $start")
    if end is not None:
        where.append(f"CAST({ident(ts)} AS TIMESTAMPTZ) <= $end")
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    params = {k: v for k, v in (("start", start), ("end", end)) if v is not None}

    def query() -> pa.Table:
        table = StoredTable.of(config.repo_path, source_path(config, source))
        with connect() as con, (nullcontext() if table is None else reading(table.paths)):
            if table is not None:  # one of a repo's recorded tables: check what is read
                records = recorded_files(table.paths)
                table.check(records, table.files(records),
                            [*keys, *features, ts, *([created] if created else [])])
            register_source(con, config, source, "source", mapped=False)
            sql = f"SELECT {columns} FROM source {condition} {qualify}"
            return con.sql(sql, params=params or None).to_arrow_table()

    return DuckDBAsOfRetrievalJob(query, repo_path=config.repo_path)

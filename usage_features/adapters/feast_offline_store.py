"""A Feast offline store for local Parquet ``FileSource``s, on DuckDB's ``ASOF JOIN``.

Use it in ``feature_store.yaml``::

    offline_store:
      type: usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore

Why not Feast's own stores (0.67): the default ``file`` (Dask) store drops entity rows whose
timestamp precedes an entity's first feature row, and needs ~28 s for 100k entity rows; the
``duckdb`` store resolves relative source paths against the working directory, not the repo.
This one joins each feature view with one ``ASOF LEFT JOIN`` (latest row at or before the entity
timestamp, within ``ttl`` when one is set), keeps every entity row in its order, resolves
relative paths against the repo, and reads a directory source as all Parquet files below it.
On-demand views run as in any Feast store (``RetrievalJob`` applies them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.offline_store import (
    OfflineStore,
    RetrievalJob,
    RetrievalMetadata,
)
from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df
from feast.repo_config import FeastConfigBaseModel, RepoConfig

from usage_features.adapters.duckdb_connection import connect, literal_path, sql_string

_ROW = "__entity_row"


class DuckDBAsOfOfflineStoreConfig(FeastConfigBaseModel):
    """Config of :class:`DuckDBAsOfOfflineStore` (no options beyond the type)."""

    type: Literal["usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore"] = (
        "usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore"
    )


class DuckDBAsOfRetrievalJob(RetrievalJob):
    """A deferred DuckDB query; Feast's base class applies on-demand views and validation."""

    def __init__(self, query: Callable[[], pa.Table], full_feature_names: bool = False,
                 on_demand_feature_views=None, metadata: RetrievalMetadata | None = None):
        self._query = query
        self._full_feature_names = full_feature_names
        self._odfvs = on_demand_feature_views or []
        self._metadata = metadata

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        return self._query()

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._query().to_pandas()

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self):
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def persist(self, storage, allow_overwrite: bool = False, timeout: int | None = None):
        path = Path(storage.file_options.uri)
        if path.exists() and not allow_overwrite:
            raise FileExistsError(f"{path} exists; pass allow_overwrite=True")
        pq.write_table(self.to_arrow(), path)


class DuckDBAsOfOfflineStore(OfflineStore):
    """Point-in-time joins over local Parquet with DuckDB ``ASOF LEFT JOIN``."""

    @staticmethod
    def get_historical_features(config: RepoConfig, feature_views: list[FeatureView],
                                feature_refs: list[str], entity_df: pd.DataFrame | str,
                                registry, project: str, full_feature_names: bool = False,
                                **_: Any) -> RetrievalJob:
        if not isinstance(entity_df, pd.DataFrame):
            raise ValueError("DuckDBAsOfOfflineStore takes the entity rows as a DataFrame")
        schema = dict(zip(entity_df.columns, entity_df.dtypes))
        ts_column = infer_event_timestamp_from_entity_df(schema)
        entity = entity_df.copy()
        entity[ts_column] = pd.to_datetime(entity[ts_column], utc=True)
        entity[_ROW] = range(len(entity))

        def query() -> pa.Table:
            con = connect()
            con.register("entity", pa.Table.from_pandas(entity, preserve_index=False))
            selects, joins = [], []
            for i, view in enumerate(feature_views):
                select, join = _asof_join(config, view, feature_refs, ts_column,
                                          full_feature_names, f"v{i}")
                selects += select
                joins.append(join)
            columns = ", ".join(["e.*", *selects])
            sql = f"SELECT {columns} FROM entity e {' '.join(joins)} ORDER BY e.{_ROW}"
            return con.sql(sql).to_arrow_table().drop_columns([_ROW])

        from feast.on_demand_feature_view import OnDemandFeatureView

        odfvs = OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
        stamps = entity[ts_column]
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in entity_df.columns if c != ts_column],
            min_event_timestamp=stamps.min() if len(stamps) else None,
            max_event_timestamp=stamps.max() if len(stamps) else None,
        )
        return DuckDBAsOfRetrievalJob(query, full_feature_names, odfvs, metadata)

    @staticmethod
    def pull_latest_from_table_or_query(config: RepoConfig, data_source: DataSource,
                                        join_key_columns: list[str],
                                        feature_name_columns: list[str],
                                        timestamp_field: str,
                                        created_timestamp_column: str | None,
                                        start_date: datetime, end_date: datetime
                                        ) -> RetrievalJob:
        order = ", ".join(f'"{c}" DESC' for c in (timestamp_field, created_timestamp_column)
                          if c)
        keys = ", ".join(f'"{k}"' for k in join_key_columns)
        latest = f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1"
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


def source_sql(config: RepoConfig, source: DataSource, mapped: bool = True) -> str:
    """A DuckDB relation over a ``FileSource``, with its field mapping applied if ``mapped``.

    Feast asks the ``pull_*`` methods for the source's own column names, and maps them itself.
    """
    if not isinstance(source, FileSource):
        raise ValueError(f"{source.name}: only FileSource is supported, got {type(source)}")
    path = Path(source.path)
    if not path.is_absolute() and config.repo_path is not None:
        path = Path(config.repo_path) / path
    # the source's own path read literally; below a directory, every Parquet file
    target = f"{literal_path(path)}/**/*.parquet" if path.is_dir() else literal_path(path)
    mapping = source.field_mapping if mapped else {}
    rename = ", ".join(f'"{old}" AS "{new}"' for old, new in mapping.items())
    star = f"* RENAME ({rename})" if rename else "*"
    return f"(SELECT {star} FROM read_parquet({sql_string(target)}, union_by_name = true))"


def _asof_join(config, view: FeatureView, feature_refs, ts_column, full_names, alias):
    prefix = view.projection.name_to_use()
    features = [r.split(":", 1)[1] for r in feature_refs if r.split(":", 1)[0] == prefix]
    keys = view.projection.join_key_map or {c.name: c.name for c in view.entity_columns}
    source = view.batch_source
    ts, created = source.timestamp_field, source.created_timestamp_column
    relation = source_sql(config, source)
    if created:
        partition = ", ".join(f'"{k}"' for k in keys) + f', "{ts}"'
        relation = (f"(SELECT * FROM {relation} QUALIFY row_number() OVER "
                    f'(PARTITION BY {partition} ORDER BY "{created}" DESC) = 1)')
    on = " AND ".join(f'e."{entity_col}" = {alias}."{key}"' for key, entity_col in keys.items())
    join = (f"ASOF LEFT JOIN {relation} {alias} "
            f'ON {on} AND e."{ts_column}" >= CAST({alias}."{ts}" AS TIMESTAMPTZ)')
    fresh = "true"
    if view.ttl and view.ttl.total_seconds() > 0:
        fresh = (f'CAST({alias}."{ts}" AS TIMESTAMPTZ) >= e."{ts_column}" - '
                 f"INTERVAL {int(view.ttl.total_seconds())} SECOND")
    base = view.projection.name_alias or view.name
    selects = [
        f'CASE WHEN {fresh} THEN {alias}."{f}" END AS "{f"{base}__{f}" if full_names else f}"'
        for f in features
    ]
    return selects, join


def _pull(config, source, keys, features, ts, created, start, end, qualify) -> RetrievalJob:
    columns = ", ".join(f'"{c}"' for c in [*keys, *features, ts, *([created] if created else [])])
    where = []
    if start is not None:
        where.append(f'CAST("{ts}" AS TIMESTAMPTZ) >= $start')
    if end is not None:
        where.append(f'CAST("{ts}" AS TIMESTAMPTZ) <= $end')
    condition = f"WHERE {' AND '.join(where)}" if where else ""
    params = {k: v for k, v in (("start", start), ("end", end)) if v is not None}

    def query() -> pa.Table:
        relation = source_sql(config, source, mapped=False)
        sql = f"SELECT {columns} FROM {relation} {condition} {qualify}"
        return connect().sql(sql, params=params).to_arrow_table()

    return DuckDBAsOfRetrievalJob(query)

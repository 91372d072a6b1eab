"""A Feast offline store for local Parquet ``FileSource``s, on DuckDB's ``ASOF JOIN``.

Use it in any Feast repo's ``feature_store.yaml``::

    offline_store:
      type: usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore

Each feature view is joined with one ``ASOF LEFT JOIN``: the latest row at or before the entity
timestamp (ties: latest ``created_timestamp_column``), within ``ttl`` when one is set. Every entity
row is kept, in order, with its columns as given; relative source paths are resolved against the
repo; a directory source reads as all Parquet files below it. Entity rows may also be a DuckDB
SQL string (sources are views named after them) or ``None`` with ``start_date``/``end_date``.
Saved datasets (``persist``), offline writes and feature-service logging write Parquet files.

Modules: ``store`` (the Feast interface), ``point_in_time`` (the join), ``sources`` (reading),
``writes`` (writing), ``job`` (the retrieval job).
"""

from usage_features.adapters.feast_offline_store.job import DuckDBAsOfRetrievalJob
from usage_features.adapters.feast_offline_store.store import (
    DuckDBAsOfOfflineStore,
    DuckDBAsOfOfflineStoreConfig,
)

__all__ = ["DuckDBAsOfOfflineStore", "DuckDBAsOfOfflineStoreConfig", "DuckDBAsOfRetrievalJob"]

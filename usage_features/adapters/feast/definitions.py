"""Feast objects for a feature repo's definitions (``churn_features.py``): fields from the spec's
features, the sources of the tables the build writes.

The features are the spec's (:class:`usage_features.features.spec.Feature`): anything with a
``name``, a ``dtype`` (``int64``, ``float64``, ``timestamp``, ``bool``, ``string``) and a
``description``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml
from feast import Field, FileSource
from feast.types import Bool, Float64, Int64, String, UnixTimestamp


def feast_schema(features: Iterable, describe: bool = True) -> list:
    """Feast ``Field``s for spec features.

    ``describe=False`` for an on-demand view: Feast 0.67 checks its declared schema against
    fields inferred from a sample run, and ``Field.__eq__`` compares descriptions too.
    """
    types = {"int64": Int64, "float64": Float64, "timestamp": UnixTimestamp, "bool": Bool,
             "string": String}
    return [Field(name=f.name, dtype=types[f.dtype], description=f.description if describe else "")
            for f in features]


def describe(features: Iterable) -> dict[str, str]:
    """Feature descriptions as Feast tags (for views whose fields cannot carry them)."""
    return {f.name: f.description for f in features}


def table_source(name: str, path: str, timestamp_field: str, description: str):
    """The Feast source of a feature table the build writes (Parquet under ``data/``).

    A ``FileSource`` for the embedded default (and any offline store that reads files); a
    ``SparkSource`` over the same files when the config being applied uses Feast's Spark
    offline store, which accepts nothing else. The config is the one Feast itself picks:
    ``$FEAST_FS_YAML_FILE_PATH``, else ``feature_store.yaml`` in the repo (``feast apply`` runs
    the definitions from the repo directory), so
    ``FEAST_FS_YAML_FILE_PATH=feature_store.spark.yaml feast apply`` registers Spark sources.
    """
    if _offline_store_type() == "spark":
        # deferred: Feast's Spark contrib, for a Spark offline store only (the spark extra)
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
            SparkSource,
        )

        return SparkSource(name=name, path=str(Path(path).resolve()), file_format="parquet",
                           timestamp_field=timestamp_field, description=description)
    return FileSource(name=name, path=path, timestamp_field=timestamp_field,
                      description=description)


def _offline_store_type() -> str | None:
    config = Path(os.environ.get("FEAST_FS_YAML_FILE_PATH", "feature_store.yaml"))
    if not config.exists():
        return None
    return ((yaml.safe_load(config.read_text()) or {}).get("offline_store") or {}).get("type")


__all__ = ["describe", "feast_schema", "table_source"]

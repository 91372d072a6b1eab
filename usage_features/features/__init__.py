"""Churn features: the spec (what), its SQL (how), the build (when) and retrieval through Feast."""

from __future__ import annotations

from collections.abc import Iterable

from usage_features.features import request_time
from usage_features.features.spec import Feature


def feast_schema(features: Iterable[Feature], describe: bool = True) -> list:
    """Feast ``Field``s for spec features.

    ``describe=False`` for an on-demand view: Feast 0.67 checks its declared schema against
    fields inferred from a sample run, and ``Field.__eq__`` compares descriptions too.
    """
    from feast import Field
    from feast.types import Bool, Float64, Int64, String, UnixTimestamp

    types = {"int64": Int64, "float64": Float64, "timestamp": UnixTimestamp, "bool": Bool,
             "string": String}
    return [Field(name=f.name, dtype=types[f.dtype], description=f.description if describe else "")
            for f in features]


def describe(features: Iterable[Feature]) -> dict[str, str]:
    """Feature descriptions as Feast tags (for views whose fields cannot carry them)."""
    return {f.name: f.description for f in features}


__all__ = ["describe", "feast_schema", "request_time"]

"""Open a feature repo's Feast store, register its definitions, check its online tables.

The Feast adapter's operations (:mod:`usage_features.adapters.feast.store`), under the name the
rest of the package imports them by, with the feature service's name.
"""

from __future__ import annotations

from usage_features.adapters.feast.store import (
    DEFAULT_CONFIG,
    DefinitionsError,
    OnlineStoreNotMaterialized,
    apply_definitions,
    as_under_the_feast_cli,
    check_online_tables,
    not_materialized,
    open_store,
)
from usage_features.config import SERVICE_NAME

__all__ = ["DEFAULT_CONFIG", "SERVICE_NAME", "DefinitionsError", "OnlineStoreNotMaterialized",
           "apply_definitions", "as_under_the_feast_cli", "check_online_tables",
           "not_materialized", "open_store"]

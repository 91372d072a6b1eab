"""Open a feature repo's Feast store, register its definitions, check its online tables.

The Feast adapter's operations (:mod:`usage_features.adapters.feast.store`), under the name the
rest of the package imports them by, with the feature service's name; and the error a read of a
damaged feature file raises (:class:`~usage_features.adapters.checksums.DamagedFileError`).
"""

from __future__ import annotations

from usage_features.adapters.checksums import DamagedFileError
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

__all__ = ["DEFAULT_CONFIG", "SERVICE_NAME", "DamagedFileError", "DefinitionsError",
           "OnlineStoreNotMaterialized",
           "apply_definitions", "as_under_the_feast_cli", "check_online_tables",
           "not_materialized", "open_store"]

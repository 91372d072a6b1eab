"""Features through the ``churn_model_v1`` service: historical (training) and online (scoring).

Thin, typed operations that take a ``FeatureStore``. Both return the entity columns followed by
the served features in spec order, with the spec's types and "no history yet" defaults (a
customer with no events before D has 0 events, not a missing value), so training and scoring
see identical frames. Callers never name a feature view or a request-time feature. The online
store's fast path, which needs Feast's private API, is the adapter
:mod:`usage_features.adapters.feast.online`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from usage_features.adapters.feast.online import (
    directly_readable_views,
    not_materialized,
    read_online_store,
)
from usage_features.features import request_time
from usage_features.features.request_time import epoch_seconds
from usage_features.features.spec import Feature, FeatureSpec, feature_spec
from usage_features.features.store import SERVICE_NAME
from usage_features.ingestion.settings import load_vocabulary

ENTITY = "customer_id"
TIMESTAMP = "event_timestamp"
_ROW = "__row"
_NUMPY_TYPES = {"int64": np.int64, "bool": bool}


def served_feature_names(repo: Path | None = None) -> list[str]:
    """The served features of ``repo``'s vocabulary (without a repo: the default's)."""
    return feature_spec(None if repo is None else load_vocabulary(Path(repo))).served_names


def store_spec(store) -> FeatureSpec:
    """The feature spec of the store's repo (its declared event vocabulary)."""
    return feature_spec(load_vocabulary(Path(store.repo_path)))


@dataclass(frozen=True)
class OnlineRefs:
    """What :func:`read_online` reads for a feature service, resolved once.

    ``features`` are the service's stored feature refs (``view:feature``), ``inputs`` the
    stored inputs of its on-demand views. With ``views`` (each feature view object and the
    names to read from it) the configured online store is read directly, whatever its type
    (:func:`usage_features.adapters.feast.online.read_online_store`). The views are the
    registry's at resolution time: resolve again (a new scorer) after ``feast apply``. Without
    ``views`` (a service the direct read does not cover), :func:`read_online` goes through
    ``get_online_features``.
    """

    features: list[str]
    inputs: list[str]
    views: tuple[tuple[object, tuple[str, ...]], ...] | None = None
    join_key: str = ENTITY
    spec: FeatureSpec | None = None


def online_refs(store, service: str = SERVICE_NAME, direct: bool = True) -> OnlineRefs:
    """Stored feature refs of the service, and the stored inputs of its on-demand views.

    Request-time features are computed here (with the caller's ``as_of``) by the same function
    the on-demand view runs, instead of by Feast at "now". ``direct=False`` leaves the feature
    views unresolved: :func:`read_online` then goes through ``get_online_features`` (the
    reference the direct read is tested against).
    """
    request_time_names = {f.name for f in store_spec(store).request_time}
    refs, inputs = [], []
    for projection in store.get_feature_service(service).feature_view_projections:
        if any(f.name in request_time_names for f in projection.features):
            odfv = store.get_on_demand_feature_view(projection.name)
            for source in odfv.source_feature_view_projections.values():
                inputs += [f"{source.name_to_use()}:{f.name}" for f in source.features
                           if request_time.is_input(f.name)]
        else:
            refs += [f"{projection.name_to_use()}:{f.name}" for f in projection.features]
    inputs = [r for r in dict.fromkeys(inputs) if r not in refs]
    views = directly_readable_views(store, refs + inputs, ENTITY) if direct else None
    return OnlineRefs(refs, inputs, views, spec=store_spec(store))


def historical_features(store, entity_df: pd.DataFrame,
                        service: str = SERVICE_NAME) -> pd.DataFrame:
    """Point-in-time features for ``(customer_id, event_timestamp)`` rows, in their order.

    Extra columns of ``entity_df`` (labels, say) are kept.
    """
    missing = {ENTITY, TIMESTAMP} - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity_df needs columns {sorted(missing)}")
    entity = entity_df.reset_index(drop=True).copy()
    # Microseconds: the resolution of Parquet, Spark and DuckDB timestamps.
    entity[TIMESTAMP] = pd.to_datetime(entity[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    entity[_ROW] = range(len(entity))
    job = store.get_historical_features(entity_df=entity,
                                        features=store.get_feature_service(service))
    try:
        frame = job.to_df().sort_values(_ROW).set_index(_ROW)
    finally:
        if hasattr(job, "close"):  # the project's offline store: its DuckDB connection
            job.close()
    frame.index.name = None
    # As the caller gave it (some offline stores, Spark's among them, return it naive).
    frame[TIMESTAMP] = entity[TIMESTAMP].array
    extra = [c for c in entity_df.columns if c not in (ENTITY, TIMESTAMP)]
    return conform(frame, [ENTITY, TIMESTAMP, *extra], store_spec(store)
                   ).set_index(entity_df.index)


@dataclass(frozen=True)
class OnlineFeatures:
    """Served features of some customers as typed NumPy arrays (no DataFrame on the hot path)."""

    customer_ids: list[str]
    values: dict[str, np.ndarray]
    known: np.ndarray

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        """The features ``names`` as a float matrix, one row per customer."""
        return np.column_stack([self.values[n].astype(float) for n in names])

    def record(self, i: int) -> dict:
        return {name: values[i].item() for name, values in self.values.items()}

    def records(self) -> list[dict]:
        """:meth:`record` of every customer (Python values), in one pass per feature."""
        columns = {name: values.tolist() for name, values in self.values.items()}
        return [dict(zip(columns, row)) for row in zip(*columns.values())]

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({ENTITY: self.customer_ids, **self.values})
        frame["known"] = self.known
        return frame


def read_online(store, customer_ids: Sequence[str], as_of: datetime | None = None,
                refs: OnlineRefs | None = None) -> OnlineFeatures:
    """Latest materialized features for ``customer_ids``, request-time features at ``as_of``.

    ``as_of`` defaults to now; pass it for reproducible scoring. ``known`` says whether the
    online store has anything for the customer. ``refs`` (from :func:`online_refs`) saves
    resolving the service on every call; with its feature views resolved, the online store
    is read directly (see :class:`OnlineRefs`).
    """
    refs = refs or online_refs(store)
    spec = refs.spec or store_spec(store)
    if refs.views is not None:
        arrays, known = read_online_store(store, refs.views, refs.join_key, customer_ids)
    else:
        arrays, known = _read_get_online_features(store, refs.features, refs.inputs,
                                                  customer_ids)
    moment = (as_of or datetime.now(UTC)).timestamp()
    arrays.update(request_time.compute_arrays(arrays, np.full(len(customer_ids), moment)))
    values = {f.name: typed(arrays[f.name], f) for f in spec.served}
    return OnlineFeatures(list(customer_ids), values, known)


def _read_get_online_features(store, refs: list[str], inputs: list[str],
                              customer_ids: Sequence[str]) -> tuple[dict, np.ndarray]:
    """Stored features as float arrays (times in epoch seconds), through Feast's front door."""
    try:
        response = store.get_online_features(
            features=refs + inputs, entity_rows=[{ENTITY: c} for c in customer_ids]).to_dict()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        views = list(dict.fromkeys(r.split(":")[0] for r in refs + inputs))
        raise not_materialized(store.repo_path, views, "has no online table (dropped?)") from None
    stored = [r.split(":")[1] for r in refs + inputs]
    known = np.zeros(len(customer_ids), dtype=bool)
    for name in stored:
        known |= np.array([v is not None for v in response[name]])
    arrays = {name: epoch_seconds(response[name]) if name.endswith("_at")
              else np.array(response[name], dtype=float) for name in stored}
    return arrays, known


def online_features(store, customer_ids: Sequence[str], as_of: datetime | None = None,
                    refs: OnlineRefs | None = None) -> pd.DataFrame:
    """:func:`read_online` as a DataFrame: ``customer_id``, the served features, ``known``."""
    return read_online(store, customer_ids, as_of, refs).to_frame()


def typed(values: np.ndarray, feature: Feature) -> np.ndarray:
    """One served feature's float values (NaN: none) with its "no history" default filled, as
    the spec's type."""
    if feature.default is not None:
        values = np.where(np.isnan(values), feature.default, values)
    return values.astype(_NUMPY_TYPES.get(feature.dtype, np.float64))


def conform(frame: pd.DataFrame, keep: Sequence[str], spec: FeatureSpec | None = None
            ) -> pd.DataFrame:
    """``keep`` columns then the served features (of ``spec``, default the default
    vocabulary's), :func:`typed`."""
    out = frame[list(keep)].copy()
    for feature in (spec or feature_spec()).served:
        values = frame[feature.name].to_numpy(dtype=float, na_value=np.nan)
        out[feature.name] = typed(values, feature)
    return out

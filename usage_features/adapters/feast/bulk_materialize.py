"""Feast's materialization into its SQLite online store, written in bulk.

``FeatureStore.materialize`` on the local engine reads each view's rows of the interval from
the offline store, keeps each entity's latest, converts every value to a proto one by one and
writes it with one ``execute`` per value (``SqliteOnlineStore.online_write_batch``): for a day
of 74,000 customers and 25 features (10^8 events), 25-30 s, most of it Python per value.
:func:`materialize_in_bulk` writes the same rows: the offline store's same query, the
engine's same de-duplication, each *distinct* value of a column converted by Feast's own
functions once, and one ``executemany`` of Feast's own upsert per view.
``tests/integration/test_bulk_materialize.py`` holds the online tables and the registry's
intervals equal to Feast's own path, row for row and byte for byte.

It applies only where it is that path: the SQLite online store without its vector or
OpenAI-compatible columns, the local engine with its default backend, plain feature views
without field mapping, aggregations, transformations or validation. Anything else goes through
Feast (:func:`materialize_in_bulk` returns False). Like
:mod:`usage_features.adapters.feast.online`, this module uses Feast's private API, here alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import numpy as np
import pandas as pd

from usage_features.adapters.feast.online import string_entity_keys


def materialize_in_bulk(store, views: list, start: datetime, end: datetime) -> bool:
    """Materialize ``views`` (from the registry) over ``[start, end]`` as
    ``store.materialize`` would, and record each view's interval; False (nothing done) where
    the bulk path does not apply."""
    if not _applies(store, views):
        return False
    for view in views:
        with _materializing(store, view):
            table = _latest_rows(store, view, start, end)
            if table.num_rows:
                _write(store, view, table)
        store.registry.apply_materialization(view, store.project, start, end)
    store._precompute_affected_services([view.name for view in views])
    return True


@contextmanager
def _materializing(store, view) -> Iterator[None]:
    """The view's lifecycle state as ``FeatureStore.materialize`` moves it: to
    ``MATERIALIZING`` (committed) while its rows are written, back where it was if that
    fails; ``apply_materialization`` then makes it ``AVAILABLE_ONLINE``."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.feature_view import FeatureViewState

    previous = view.state
    if previous == FeatureViewState.MATERIALIZING:
        previous = FeatureViewState.GENERATED
    elif previous != FeatureViewState.STATE_UNSPECIFIED:
        if not view.state.can_transition_to(FeatureViewState.MATERIALIZING):
            raise ValueError(f"FeatureView {view.name} cannot transition from "
                             f"{view.state.name} to MATERIALIZING.")
        view.state = FeatureViewState.MATERIALIZING
        store.registry.apply_feature_view(view, store.project, commit=True)
    try:
        yield
    except BaseException:
        if previous != FeatureViewState.STATE_UNSPECIFIED:
            view.state = previous
            store.registry.apply_feature_view(view, store.project, commit=True)
        raise


def _applies(store, views: list) -> bool:
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast import FeatureView
    from feast.infra.compute_engines.local.compute import LocalComputeEngine
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    provider, config = store._get_provider(), store.config
    online = config.online_store
    if (type(provider.online_store) is not SqliteOnlineStore
            or getattr(online, "vector_enabled", False)
            or getattr(online, "enable_openai_compatible_store", False)):
        return False
    engine = provider.batch_engine
    if type(engine) is not LocalComputeEngine or engine.backend_name is not None:
        return False
    return all(type(view) is FeatureView and view.online and view.batch_source is not None
               and view.stream_source is None and not view.batch_source.field_mapping
               and not getattr(view, "aggregations", None)
               and not getattr(view, "feature_transformation", None)
               and not getattr(view, "enable_validation", False)
               for view in views)


def _latest_rows(store, view, start: datetime, end: datetime):
    """What the local engine's plan writes for ``view``: the offline store's rows of the
    interval, each entity's latest, through the pandas backend as the engine passes them."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.infra.compute_engines.backends.pandas_backend import PandasBackend
    from feast.utils import _get_column_names, make_tzaware

    config = store.config
    offline = store._get_provider().offline_store
    entities = [store.registry.get_entity(name, store.project) for name in view.entities]
    join_keys, features, timestamp, created = _get_column_names(view, entities)
    pull = (offline.pull_latest_from_table_or_query
            if config.materialization_config.pull_latest_features
            else offline.pull_all_from_table_or_query)
    table = pull(config=config, data_source=view.batch_source, join_key_columns=join_keys,
                 feature_name_columns=features, timestamp_field=timestamp,
                 created_timestamp_column=created, start_date=make_tzaware(start),
                 end_date=make_tzaware(end)).to_arrow()
    backend = PandasBackend()
    frame = backend.from_arrow(backend.to_arrow(backend.from_arrow(table)))  # the filter node
    sort = [timestamp] + ([created] if created and created in frame.columns else [])
    return backend.to_arrow(backend.drop_duplicates(frame, keys=join_keys, sort_by=sort,
                                                    ascending=False)).combine_chunks()


def _write(store, view, table) -> None:
    """``online_write_batch``'s rows for ``table`` (each entity's one row), in one
    ``executemany`` of its own upsert, in one transaction."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.sqlite import _quote_id, _table_id
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    config = store.config
    version = config.entity_key_serialization_version
    join_types = {e.name: e.dtype.to_value_type() for e in view.entity_columns}
    (join_key, value_type), *others = join_types.items()
    keys = None
    if not others and value_type == ValueType.STRING:
        keys = string_entity_keys(join_key, table.column(join_key).to_pylist(), version)
    if keys is None:
        key_values = {name: python_values_to_proto_values(
            table.column(name).to_numpy(zero_copy_only=False), value_type)
            for name, value_type in join_types.items()}
        keys = [serialize_entity_key(
            EntityKey(join_keys=list(join_types), entity_values=[key_values[k][i]
                                                                 for k in join_types]),
            entity_key_serialization_version=version)
            for i in range(table.num_rows)]
    event = _times(table.column(view.batch_source.timestamp_field))
    created_column = view.batch_source.created_timestamp_column
    created = _times(table.column(created_column)) if created_column else None
    # in the primary key's order (the keys', then the names'), each page of the table's
    # B-tree is visited once; the same key twice keeps its order (the last row wins)
    columns = sorted((f.name, *_values(table.column(f.name), f.dtype.to_value_type()))
                     for f in view.features)
    order = np.argsort(np.array(keys, dtype=object), kind="stable").tolist()
    table_id = _quote_id(_table_id(config.project, view,
                                   config.registry.enable_online_feature_view_versioning))
    upsert = (f"INSERT INTO {table_id} (entity_key, feature_name, value, value_text, event_ts, "
              f"created_ts) VALUES (?, ?, ?, ?, ?, {'NULL' if created is None else '?'}) ON "
              "CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
              "value_text = excluded.value_text, event_ts = excluded.event_ts, "
              "created_ts = excluded.created_ts;")

    # blobs as bytearrays: sqlite3 binds them as the same BLOBs, but passes a bytes object
    # through its adapter lookup first (two per row: 1.4 s of 2.2 M rows' 10.8 s, measured)
    blob_keys = [bytearray(key) for key in keys]

    def rows():  # (no created column: one parameter fewer, a literal NULL, per row)
        for i in order:
            key, at = blob_keys[i], event[i]
            for name, codes, blobs, texts in columns:
                code = codes[i]
                if created is None:
                    yield key, name, blobs[code], texts[code], at
                else:
                    yield key, name, blobs[code], texts[code], at, created[i]

    connection = store._get_provider().online_store._get_conn(config)
    with connection:
        connection.executemany(upsert, rows())


def _values(column, value_type) -> tuple[list[int], list[bytearray], list[str | None]]:
    """Per row the code of its distinct value, and per code the serialized proto (as a
    bytearray: see :func:`_write`) and the ``value_text`` Feast stores: each distinct value
    converted once, by Feast's function."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.type_map import python_values_to_proto_values

    values = column.to_numpy(zero_copy_only=False)  # as _convert_arrow_to_proto reads it
    codes, first = _distinct(values)
    protos = python_values_to_proto_values(values[first], value_type)
    return (codes.tolist(), [bytearray(p.SerializeToString()) for p in protos],
            [extract_text_and_num(p, False)[0] for p in protos])


def _times(column) -> list:
    """What ``online_write_batch`` stores for a timestamp column: each distinct time converted
    once as Feast converts it (a naive UTC datetime), then as SQLite's adapter registered for
    it (Feast's: Unix seconds) turns it into a parameter."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.utils import _coerce_datetime, to_naive_utc

    values = column.to_numpy(zero_copy_only=False)
    codes, first = _distinct(values)
    converted = [_as_parameter(to_naive_utc(_coerce_datetime(v)))
                 for v in pd.to_datetime(values[first])]
    return [converted[c] for c in codes.tolist()]


def _as_parameter(value):
    """``value`` as :mod:`sqlite3` binds it: through the adapter registered for its type."""
    adapt = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
    return value if adapt is None else adapt(value)


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``values``' distinct elements (by their bits: -0.0 is not 0.0, NaNs by their
    payload) and each code's first position."""
    if values.dtype.kind in "fMmb":
        values = values.view(f"u{values.itemsize}")
    if values.dtype.kind in "iu":
        codes, _ = pd.factorize(values)
    else:  # objects (strings, None): by type and value, a NaN never equal to another
        seen: dict = {}
        try:
            codes = np.array([seen.setdefault((type(v), v), len(seen))
                              for v in values.tolist()], dtype=np.int64)
        except TypeError:  # unhashable (lists): every row its own
            codes = np.arange(len(values))
    _, first = np.unique(codes, return_index=True)
    return codes, first

"""Feast's online store read directly, and its SQLite tables checked and created.

Everything of the project that uses Feast's private API for the online store lives here: the
provider (``FeatureStore._get_provider``), the SQLite store's connection (``_get_conn``) and its
table names (``_table_id``, ``_quote_id``). :func:`read_online_store` does what
``get_online_features`` does underneath (one ``online_read`` per feature view; SQLite: one bulk
query), without resolving the references, building protos and converting the whole answer to
Python objects on every call; ``tests/integration/test_online_parity.py`` holds it equal to
``get_online_features`` on SQLite and Redis.
"""

from __future__ import annotations

import math
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

#: Entity keys per query (SQLite allows 32,766 parameters).
SQLITE_CHUNK = 10_000

_NUMBER_KINDS = frozenset({"int64_val", "int32_val", "double_val", "float_val", "bool_val"})


class OnlineStoreNotMaterialized(RuntimeError):
    """A feature view's online table is missing: never materialized, or dropped."""


def not_materialized(repo, views: list[str], why: str) -> OnlineStoreNotMaterialized:
    """The error for ``views`` of ``repo`` (``why``: "was never materialized"...)."""
    return OnlineStoreNotMaterialized(
        f"no online features: feature view {', '.join(views)} {why}; run "
        f"`usage-features materialize --repo {repo}` (with the --config you use, if any)")


def directly_readable_views(store, refs: list[str], join_key: str) -> tuple | None:
    """Each feature view of ``refs`` (``view:feature``) and its feature names; None unless every
    view is a plain one keyed by the string ``join_key`` alone (what the direct read builds keys
    for)."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast import FeatureView, ValueType

    names: dict[str, list[str]] = {}
    for ref in refs:
        view, feature = ref.split(":")
        names.setdefault(view, []).append(feature)
    views = []
    for view_name, features in names.items():
        view = store.get_feature_view(view_name, allow_registry_cache=True)
        if (not isinstance(view, FeatureView) or view.projection.join_key_map
                or [c.name for c in view.entity_columns] != [join_key]):
            return None
        entities = [store.get_entity(name, allow_registry_cache=True) for name in view.entities]
        if [(e.join_key, e.value_type) for e in entities] != [(join_key, ValueType.STRING)]:
            return None
        views.append((view, tuple(features)))
    return tuple(views)


def read_online_store(store, views: tuple, join_key: str,
                      customer_ids: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The stored features of ``views`` (from :func:`directly_readable_views`) for
    ``customer_ids``: float arrays (NaN for none; times in epoch seconds, as
    ``get_online_features(...).to_dict()`` then ``np.array(float)`` would make them), and
    whether the store holds anything for each customer."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    provider, config = store._get_provider(), store.config
    keys = [EntityKey(join_keys=[join_key], entity_values=[Value(string_val=c)])
            for c in customer_ids]
    arrays, known = {}, np.zeros(len(customer_ids), dtype=bool)
    # SQLite gives each value's serialized bytes: most repeat (small counts, 0.0), and a
    # value is decoded once per distinct bytes, not once per customer and feature
    decoded: dict[bytes, float | None] = {}

    def decode(stored) -> float | None:
        if not isinstance(stored, bytes):
            return _number(stored)
        number = decoded.get(stored, _UNDECODED)
        if number is _UNDECODED:
            number = decoded[stored] = _number(Value.FromString(stored))
        return number

    for view, names in views:
        columns = {name: np.full(len(keys), math.nan) for name in names}
        chunks = _sqlite_values(provider.online_store, config, view, keys)
        if chunks is None:  # another store: Feast's online_read, value by value (a fresh
            # list of names: some stores, Redis, append to the one they are given)
            chunks = _one_chunk(provider.online_read(
                config=config, table=view, entity_keys=keys, requested_features=list(names)))
        for rows, found, stored in chunks:
            # each distinct name and value once, then whole arrays (10^5 customers and 25
            # features: 2.5 M values, 3.5 s value by value)
            name_codes, name_of = pd.factorize(found)
            asked = np.isin(name_codes, [k for k, name in enumerate(name_of) if name in columns])
            rows, name_codes = rows[asked], name_codes[asked]  # (another feature's: not read)
            codes, distinct = pd.factorize(stored[asked], use_na_sentinel=False)
            numbers = [decode(value) for value in distinct]
            present = np.array([n is not None for n in numbers], dtype=bool)[codes]
            value = np.array([math.nan if n is None else n for n in numbers], dtype=float)[codes]
            for k, name in enumerate(name_of):
                if name in columns:
                    pick = present & (name_codes == k)
                    columns[name][rows[pick]] = value[pick]
                    known[rows[pick]] = True
        arrays.update(columns)
    return arrays, known


def _one_chunk(read: list) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``online_read``'s answer (per key: its time and its features' Value protos) as one
    chunk of :func:`_sqlite_values`'s form, the protos serialized (protos cannot be hashed)."""
    triples = [(i, name, value.SerializeToString()) for i, (_, features) in enumerate(read)
               if features for name, value in features.items()]
    yield (np.array([t[0] for t in triples], dtype=np.intp),
           np.array([t[1] for t in triples], dtype=object),
           np.array([t[2] for t in triples], dtype=object))


_UNDECODED = object()


def _number(value) -> float | None:
    """A stored Value proto as a float (times in epoch seconds); None for none."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.type_map import NULL_TIMESTAMP_INT_VALUE

    kind = value.WhichOneof("val")
    if kind in _NUMBER_KINDS:
        return float(getattr(value, kind))
    if kind == "unix_timestamp_val":
        seconds = value.unix_timestamp_val
        return None if seconds == NULL_TIMESTAMP_INT_VALUE else float(seconds)
    return _python_number(value)


def _sqlite_values(online_store, config, view, keys: list
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Feast's SQLite online table for ``keys``, read in bulk, in chunks: for each stored value
    the row of its key in ``keys``, its feature's name and its serialized Value proto (arrays);
    None for any other store.

    The query ``SqliteOnlineStore.online_read`` runs, on its connection, without what costs
    two thirds of its time for many customers and is not used here: a ``datetime`` per stored
    value from its timestamp, and a dict per customer (measured for 1,000 customers and 21
    features: 58 ms through ``online_read``, 28 ms here).
    """
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.sqlite import SqliteOnlineStore, _quote_id, _table_id

    if type(online_store) is not SqliteOnlineStore:
        return None
    version = config.entity_key_serialization_version
    serialized = None
    if keys and all(len(k.join_keys) == 1 and k.entity_values[0].WhichOneof("val") == "string_val"
                    and k.join_keys[0] == keys[0].join_keys[0] for k in keys):
        serialized = string_entity_keys(keys[0].join_keys[0],
                                        [k.entity_values[0].string_val for k in keys], version)
    if serialized is None:
        serialized = [serialize_entity_key(k, entity_key_serialization_version=version)
                      for k in keys]
    rows: dict[bytes, list[int]] = {}
    for i, key in enumerate(serialized):
        rows.setdefault(key, []).append(i)
    once = len(rows) == len(serialized)  # no key asked twice: each found row is one row
    table = _quote_id(_table_id(config.project, view,
                                config.registry.enable_online_feature_view_versioning))
    connection, unique = online_store._get_conn(config), list(rows)

    def values():
        for start in range(0, len(unique), SQLITE_CHUNK):
            chunk = unique[start:start + SQLITE_CHUNK]
            try:
                found = connection.execute(
                    f"SELECT entity_key, feature_name, value FROM {table} "
                    f"WHERE entity_key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            except sqlite3.OperationalError as exc:  # dropped since the scorer checked
                if "no such table" not in str(exc):
                    raise
                raise not_materialized(config.repo_path, [view.name],
                                       "has no online table (dropped?)") from None
            if once:
                at = pd.Index(chunk).get_indexer([key for key, _, _ in found]) + start
                yield (at.astype(np.intp), np.array([r[1] for r in found], dtype=object),
                       np.array([r[2] for r in found], dtype=object))
                continue
            triples = [(i, name, blob) for key, name, blob in found for i in rows[key]]
            yield (np.array([t[0] for t in triples], dtype=np.intp),
                   np.array([t[1] for t in triples], dtype=object),
                   np.array([t[2] for t in triples], dtype=object))

    return values()


def string_entity_keys(join_key: str, values: Sequence[str], version: int
                       ) -> list[bytes] | None:
    """Feast's ``serialize_entity_key`` of ``{join_key: value}`` for each string of ``values``,
    without a proto per value (for 10^5 customers, 2 s of the daily refresh): Feast's own bytes
    for the empty string, its length field replaced by each value's (its layout since version
    3). None, for Feast's function on each, where that layout does not give Feast's own bytes
    for a probe (another version, another layout)."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    def feast_s(value: str) -> bytes:
        return serialize_entity_key(
            EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)]),
            entity_key_serialization_version=version)

    head = feast_s("")[:-4]  # ... the value's length (0), then its bytes (none)

    def laid_out(value: str) -> bytes:
        encoded = value.encode("utf8")
        return head + struct.pack("<I", len(encoded)) + encoded

    if (version < 3 or not all(isinstance(v, str) for v in values)
            or any(laid_out(p) != feast_s(p) for p in ("cust-1", "é\x00", ""))):
        return None
    return [laid_out(v) for v in values]


def _python_number(value) -> float | None:
    """Any other stored value through Feast's own conversion: a float, or None for none."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.type_map import feast_value_type_to_python_type

    python = feast_value_type_to_python_type(value)
    if python is None:
        return None
    return python.timestamp() if isinstance(python, datetime) else float(python)


def missing_online_tables(store, views) -> list[str]:
    """Names of ``views`` whose table is absent from a SQLite online store (other stores have
    no tables to lose: an empty list)."""
    # deferred: Feast takes ~3 s to import; the modules that import this one do not need it
    from feast.infra.online_stores.sqlite import SqliteOnlineStore, _table_id

    online_store, config = store._get_provider().online_store, store.config
    if type(online_store) is not SqliteOnlineStore:
        return []
    versioning = config.registry.enable_online_feature_view_versioning
    tables = {_table_id(config.project, view, versioning): view.name for view in views}
    found = {name for (name,) in online_store._get_conn(config).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    return [name for table, name in tables.items() if table not in found]


def create_online_tables(store, views) -> None:
    """Create the online tables of ``views`` where they are missing (the provider's own
    ``update_infra``, as ``feast apply`` runs it; existing tables are kept as they are)."""
    entities = [store.get_entity(name) for view in views for name in view.entities]
    store._get_provider().update_infra(
        project=store.project, tables_to_delete=[], tables_to_keep=list(views),
        entities_to_delete=[], entities_to_keep=entities, partial=True)

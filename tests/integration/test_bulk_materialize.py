"""The bulk materialization (:mod:`usage_features.adapters.feast.bulk_materialize`) writes what
Feast's own ``FeatureStore.materialize`` writes: the same online rows, byte for byte, and the
same intervals and states in the registry, on a first load and on an incremental one that
rewrites history (late events); and it steps aside where it is not Feast's local SQLite path.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.conftest import copy_feature_repo
from tests.factories import churn_dataset
from usage_features.adapters.feast import bulk_materialize
from usage_features.config import RepoPaths
from usage_features.features.build import build_features
from usage_features.features.store import apply_definitions, open_store
from usage_features.ingestion import ingest_files
from usage_features.ingestion.customers import load_customers
from usage_features.service_layer import materialize as materialize_module
from usage_features.service_layer.materialize import materialize


def online_tables(repo) -> dict[str, list[tuple]]:
    """Every row of every online table, in key order."""
    with sqlite3.connect(repo / "data" / "online_store.db") as con:
        names = [n for (n,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: con.execute(f'SELECT * FROM "{n}" ORDER BY entity_key, feature_name'
                               ).fetchall() for n in names}


def registry_views(repo) -> dict[str, tuple]:
    """Each online view's materialization intervals and lifecycle state."""
    return {v.name: (list(v.materialization_intervals), v.state)
            for v in open_store(repo).list_feature_views()}


def ingest_and_build(repo, events: pd.DataFrame, now: datetime) -> None:
    source = repo / f"events-{len(list(repo.glob('events-*')))}.parquet"
    events.to_parquet(source, index=False)
    assert ingest_files([source], RepoPaths(repo), now=now).rejected == 0
    build_features(RepoPaths(repo))


@pytest.fixture(scope="module")
def twin_repos(tmp_path_factory):
    """Two copies of one repo, the first materialized through Feast, the second in bulk, over
    a first load then an incremental one that brings new days and late events."""
    root = tmp_path_factory.mktemp("bulk")
    events, customers = churn_dataset(seed=11, customers=40, days=150)
    now = datetime.now(UTC)
    cut = events.timestamp.quantile(0.8).floor("s")
    late = events[events.timestamp < cut].sample(frac=0.05, random_state=1)
    first = events[events.timestamp < cut].drop(late.index)
    repos = []
    for name in ("feast", "bulk"):
        repo = copy_feature_repo(root / name)
        customers.to_parquet(repo / "customers.parquet")
        load_customers(repo / "customers.parquet", RepoPaths(repo))
        ingest_and_build(repo, first, now)
        apply_definitions(repo)
        repos.append(repo)
    used = []
    states = []
    for end, arriving in ((cut.to_pydatetime(), None),
                          (now, pd.concat([events[events.timestamp >= cut], late]))):
        for repo in repos:
            if arriving is not None:
                ingest_and_build(repo, arriving, now)
            with pytest.MonkeyPatch.context() as patch:
                real = bulk_materialize.materialize_in_bulk

                def spy(*args, real=real, repo=repo):
                    done = real(*args) if repo.name == "bulk" else False
                    used.append((repo.name, done))
                    return done

                patch.setattr(materialize_module, "materialize_in_bulk", spy)
                materialize(repo, end=end, now=now)
        states.append([(online_tables(r), registry_views(r)) for r in repos])
    return states, used


def test_both_loads_write_the_rows_and_intervals_feast_writes(twin_repos):
    states, used = twin_repos
    assert used == [("feast", False), ("bulk", True)] * 2  # the bulk path really ran
    for (feast_rows, feast_registry), (bulk_rows, bulk_registry) in states:
        assert feast_rows.keys() == bulk_rows.keys()
        for table, rows in feast_rows.items():
            assert rows, table
            assert bulk_rows[table] == rows, table
        assert bulk_registry == feast_registry
    # the second load changed rows (new days, late events): not a comparison of two copies
    assert states[0][0][0] != states[1][0][0]


def test_odd_values_are_written_as_feast_writes_them(tmp_path):
    """A table of the usage view's columns with nulls, NaN, -0.0, infinities, repeated and
    distinct values, written by ``online_write_batch`` and by the bulk writer."""
    from feast.utils import _convert_arrow_to_proto

    repo = copy_feature_repo(tmp_path / "odd")
    events, _ = churn_dataset(seed=5, customers=8, days=100)
    ingest_and_build(repo, events, datetime.now(UTC))
    apply_definitions(repo)
    store = open_store(repo)
    view = store.get_feature_view("customer_usage")
    rng = np.random.default_rng(7)
    n = 50
    odd = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, 0.1 + 0.2, 3.0]
    columns = {"customer_id": pa.array([f"c-{i % 37}" for i in range(n)])}  # repeats: upserts
    times = pd.Timestamp("2025-03-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**6, n),
                                                                    "s")
    columns[view.batch_source.timestamp_field] = pa.array(times)
    for field in view.features:
        kind = field.dtype.to_value_type().name
        if kind == "DOUBLE":
            values = [odd[i % len(odd)] if i % 3 else rng.normal() for i in range(n)]
            array = pa.array(values, mask=np.arange(n) % 11 == 0)
        elif kind == "INT64":
            array = pa.array(rng.integers(-5, 5, n), mask=np.arange(n) % 7 == 0)
        elif kind == "UNIX_TIMESTAMP":
            array = pa.array(times, mask=np.arange(n) % 5 == 0)
        elif kind == "BOOL":
            array = pa.array(rng.random(n) < 0.5, mask=np.arange(n) % 4 == 0)
        else:
            array = pa.array([f"s{i % 3}" if i % 6 else None for i in range(n)])
        columns[field.name] = array
    table = pa.table(columns)
    twin = repo.parent / "odd-twin"
    shutil.copytree(repo, twin)
    join_keys = {e.name: e.dtype.to_value_type() for e in view.entity_columns}
    store._get_provider().online_store.online_write_batch(
        store.config, view, _convert_arrow_to_proto(table, view, join_keys), None)
    twin_store = open_store(twin)
    bulk_materialize._write(twin_store, twin_store.get_feature_view("customer_usage"), table)
    name = "usage_features_customer_usage"
    assert online_tables(twin)[name] == online_tables(repo)[name]
    assert len(online_tables(repo)[name]) == 37 * len(view.features)


def test_distinct_values_are_told_apart_by_their_bits():
    values = np.array([0.0, -0.0, np.nan, 0.0, -0.0, np.nan])
    codes, first = bulk_materialize._distinct(values)
    assert codes.tolist() == [0, 1, 2, 0, 1, 2]
    assert first.tolist() == [0, 1, 2]
    objects = np.array(["a", None, "a", 1, True, 1.0], dtype=object)
    codes, _ = bulk_materialize._distinct(objects)
    assert codes.tolist() == [0, 1, 0, 2, 3, 4]  # 1, True and 1.0 are equal, not the same


def test_another_online_store_goes_through_feast(tmp_path):
    repo = copy_feature_repo(tmp_path / "vector")
    config = repo / "feature_store.yaml"
    config.write_text(config.read_text().replace(
        "  path: data/online_store.db", "  path: data/online_store.db\n  vector_enabled: true"))
    store = open_store(repo)
    views = []
    assert bulk_materialize._applies(store, views) is False
    now = datetime.now(UTC)
    assert bulk_materialize.materialize_in_bulk(store, views, now - timedelta(1), now) is False

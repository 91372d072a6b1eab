"""A small Feast repo (not the churn repo) for the offline store's conformance tests.

Random but seeded data with sub-second timestamps, equal timestamps told apart by the created
timestamp, a field mapping, a two-entity view with a 1.5 s TTL over a directory source, an
entity-less view (``global_stats``), an on-demand view and a feature service whose projections
alias a view and remap one of its two join keys. ``ref_views`` describes the same data to the
brute-force oracle in tests/reference_pit.py.
"""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from tests.reference_pit import RefView

T0 = pd.Timestamp("2026-03-01 12:00", tz="UTC")
USERS = ["u0", "u1", "u2", "u3"]
MERCHANTS = [1, 2, 3]
STORE_TYPE = "usage_features.adapters.feast_offline_store.DuckDBAsOfOfflineStore"

DEFINITIONS = '''
from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.INT64)

user_stats = FeatureView(
    name="user_stats", entities=[user], ttl=timedelta(0),
    schema=[Field(name="score", dtype=Float64), Field(name="visits", dtype=Int64)],
    source=FileSource(name="user_stats_source", path="data/user_stats.parquet",
                      timestamp_field="ts", created_timestamp_column="created",
                      field_mapping={"raw_score": "score"}))
user_merchant = FeatureView(
    name="user_merchant", entities=[user, merchant], ttl=timedelta(seconds=1.5),
    schema=[Field(name="amount", dtype=Float64)],
    source=FileSource(name="user_merchant_source", path="data/user_merchant",
                      timestamp_field="ts"))
global_stats = FeatureView(
    name="global_stats", entities=[], ttl=timedelta(seconds=8),
    schema=[Field(name="total", dtype=Int64)],
    source=FileSource(name="global_source", path="data/global.parquet", timestamp_field="ts",
                      created_timestamp_column="created"))


@on_demand_feature_view(sources=[user_stats, user_merchant],
                        schema=[Field(name="score_times_amount", dtype=Float64)])
def score_times_amount(inputs):
    import pandas as pd

    return pd.DataFrame({"score_times_amount": inputs["score"] * inputs["amount"]})


buyers = FeatureService(name="buyers", features=[
    user_merchant.with_name("purchase").with_join_key_map({"user_id": "buyer_id"}),
    user_stats.with_join_key_map({"user_id": "buyer_id"}),
])
'''


def stamps(rng, n: int, low: float, high: float, grid: float = 0.001) -> pd.Series:
    """``n`` times in ``T0 + [low, high]`` seconds on a ``grid`` (so some coincide)."""
    seconds = np.round(rng.uniform(low, high, n) / grid) * grid
    return pd.Series(T0 + pd.to_timedelta(seconds, "s"))


def source_rows(seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 60
    user_stats = pd.DataFrame({
        "user_id": rng.choice(USERS, n),
        "ts": stamps(rng, n, 0, 20, grid=1.0),  # whole seconds: many ties on (user, ts)
        "created": T0 + pd.to_timedelta(rng.permutation(n), "s"),  # distinct, shuffled
        "raw_score": rng.normal(size=n).round(3),
        "visits": rng.integers(0, 100, n),
    })
    m = 80
    user_merchant = pd.DataFrame({
        "user_id": rng.choice(USERS, m),
        "merchant_id": rng.choice(MERCHANTS, m),
        "ts": stamps(rng, m, 0, 20),
        "amount": rng.uniform(0, 50, m).round(2),
    })
    g = 12
    global_rows = pd.DataFrame({
        "ts": stamps(rng, g, 2, 18, grid=2.0),
        "created": T0 + pd.to_timedelta(rng.permutation(g), "s"),
        "total": rng.integers(0, 1000, g),
    })
    return {"user_stats": user_stats, "user_merchant": user_merchant, "global": global_rows}


def write_repo(repo: Path, rows: dict[str, pd.DataFrame], store_type: str = STORE_TYPE) -> Path:
    (repo / "data" / "user_merchant").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(textwrap.dedent(f"""
        project: conformance
        provider: local
        registry: data/registry.db
        online_store: {{type: sqlite, path: data/online.db}}
        offline_store:
          type: {store_type}
        entity_key_serialization_version: 3
    """))
    (repo / "definitions.py").write_text(DEFINITIONS)
    rows["user_stats"].to_parquet(repo / "data" / "user_stats.parquet")
    half = len(rows["user_merchant"]) // 2  # a directory source of two files
    rows["user_merchant"].iloc[:half].to_parquet(repo / "data" / "user_merchant" / "a.parquet")
    rows["user_merchant"].iloc[half:].to_parquet(repo / "data" / "user_merchant" / "b.parquet")
    rows["global"].to_parquet(repo / "data" / "global.parquet")
    return repo


def ref_views(rows: dict[str, pd.DataFrame], user_column: str = "user_id",
              purchase_name: str = "user_merchant") -> dict[str, RefView]:
    return {
        "user_stats": RefView("user_stats", rows["user_stats"], {"user_id": user_column},
                              ["score", "visits"], "ts", "created",
                              field_mapping={"raw_score": "score"}),
        "user_merchant": RefView(purchase_name, rows["user_merchant"],
                                 {"user_id": user_column, "merchant_id": "merchant_id"},
                                 ["amount"], "ts", ttl=timedelta(seconds=1.5)),
        "global_stats": RefView("global_stats", rows["global"], {}, ["total"], "ts", "created",
                                ttl=timedelta(seconds=8)),
    }


def entity_rows(rows: dict[str, pd.DataFrame], n: int = 160, seed: int = 3,
                user_column: str = "user_id") -> pd.DataFrame:
    """Shuffled rows with duplicates, unknown keys, times before the first feature row, times
    exactly on feature rows and exactly one TTL after them."""
    rng = np.random.default_rng(seed)
    on_rows = rows["user_merchant"].sample(20, random_state=seed)
    exact = pd.DataFrame({user_column: on_rows.user_id, "merchant_id": on_rows.merchant_id,
                          "event_timestamp": on_rows.ts})
    edge = exact.assign(event_timestamp=exact.event_timestamp + pd.Timedelta(seconds=1.5))
    randoms = pd.DataFrame({
        user_column: rng.choice([*USERS, "nobody"], n),
        "merchant_id": rng.choice([*MERCHANTS, 9], n),
        "event_timestamp": stamps(rng, n, -3, 25, grid=1e-6),
    })
    frame = pd.concat([randoms, exact, edge, randoms.iloc[:15]], ignore_index=True)
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)

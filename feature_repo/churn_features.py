"""Feast definitions for the churn model, in dependency order.

Entity -> sources -> feature views -> on-demand view -> feature service. The columns come from
``usage_features.features.spec`` (one list of features for the build, the views and the model),
for the event vocabulary declared in this directory's ``usage_features.yaml`` (the seed's event
types when it declares none); the tables behind the sources are written by
``usage-features build``.
"""

from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureService, FeatureView, ValueType
from feast.on_demand_feature_view import on_demand_feature_view

from usage_features.adapters.feast.definitions import describe, feast_schema, table_source
from usage_features.adapters.feast.registry import repoint_copied_registries
from usage_features.config import CUSTOMER_PROFILE_TABLE, CUSTOMER_USAGE_TABLE, SERVICE_NAME
from usage_features.features.spec import PROFILE, feature_spec
from usage_features.ingestion.settings import load_vocabulary

# In a copy of this repo (cp -a) the registry still names the original's online tables, which
# `feast apply` would drop: point it at this directory first (a no-op anywhere else). The
# package's own commands do this in the Feast adapter before Feast reads a registry
# (open_store, apply_definitions); the feast CLI (`feast apply` run here) gives no other hook:
# importing this module is the first thing it does with the repo, before it opens the registry.
repoint_copied_registries(Path(__file__).resolve().parent)

# This repo's event vocabulary decides the per-type and role features.
spec = feature_spec(load_vocabulary(Path(__file__).resolve().parent))

# A customer of the SaaS product; every feature is keyed by it.
customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A customer account of the SaaS product",
)

# Windowed usage features, one row per customer and change day, stamped at that day's start.
# (A FileSource; a SparkSource over the same files under feature_store.spark.yaml.)
customer_usage_source = table_source(
    name="customer_usage_source",
    path=CUSTOMER_USAGE_TABLE,
    timestamp_field="feature_timestamp",
    description="Compact daily usage feature rows written by `usage-features build`",
)

# Signup time and plan from the customers table, known from the signup on.
customer_profile_source = table_source(
    name="customer_profile_source",
    path=CUSTOMER_PROFILE_TABLE,
    timestamp_field="valid_from",
    description="The customers table (without churn dates), stamped at signup",
)

# Event counts, per-type counts, decay ratios and adoption scores as of the start of the day.
# ttl=0: a row holds until the next one, however long a customer stays silent.
customer_usage_fv = FeatureView(
    name="customer_usage",
    entities=[customer],
    ttl=timedelta(0),
    schema=feast_schema(spec.stored),
    source=customer_usage_source,
    online=True,
    tags={"team": "churn", "semantics": "window [D - N days, D), D = UTC day of t"},
)

# Signup time and plan (churned_at is never a feature: it is the label).
customer_profile_fv = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(0),
    schema=feast_schema(PROFILE),
    source=customer_profile_source,
    online=True,
    tags={"team": "churn"},
)


# Recency and tenure, exact at the request time (the entity row's timestamp; now online).
@on_demand_feature_view(
    sources=[customer_usage_fv, customer_profile_fv],
    schema=feast_schema(spec.request_time, describe=False),
    mode="pandas",
    description="Request-time recency, tenure and the early-life low-adoption signal",
    tags=describe(spec.request_time),
)
def customer_recency(inputs: pd.DataFrame) -> pd.DataFrame:
    # Feast stores this body as source and runs it without this module's globals.
    from usage_features.features.request_time import compute

    return compute(inputs)


# The churn model's inputs, version 1 of the spec over this repo's vocabulary (its hash in the
# tags): training and scoring both read exactly this.
churn_model_v1 = FeatureService(
    name=SERVICE_NAME,
    features=[
        customer_usage_fv[[f.name for f in spec.stored if f.served]],
        customer_recency,
    ],
    description="Inputs of the churn classifier v1",
    tags={"model": "churn", "version": "1", "vocabulary_sha256": spec.vocabulary.sha256},
)

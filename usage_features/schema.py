"""Arrow schemas of the tables the project reads and writes (the storage contract)."""

from __future__ import annotations

import pyarrow as pa

#: The five UsageEvent columns, in the order they are stored.
EVENT_COLUMNS = ("event_id", "customer_id", "timestamp", "event_type", "feature_adoption_score")

#: The event log's schema: ids as given (UUIDs lower-cased) or derived from the content, UTC
#: microsecond timestamps, the event type as the export names it (trimmed, lower-cased), the
#: adoption score null when the repo's adoption features come from breadth.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("feature_adoption_score", pa.float64(), nullable=True),
    ]
)

#: The customers table (the simulator writes it; labels and tenure come from it).
CUSTOMER_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("signup_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("churned_at", pa.timestamp("us", tz="UTC"), nullable=True),
        pa.field("plan", pa.string(), nullable=True),  # optional: not a model input
    ]
)

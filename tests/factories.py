"""Test data builders."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from usage_features.domain import EventType, UsageEvent

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def make_event(**overrides) -> UsageEvent:
    fields = {
        "event_id": str(uuid.uuid4()),
        "customer_id": "cust-1",
        "timestamp": T0,
        "event_type": EventType.LOGIN,
        "feature_adoption_score": 0.5,
    }
    fields.update(overrides)
    return UsageEvent(**fields)

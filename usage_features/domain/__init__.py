"""The Usage bounded context. Standard library only: adapters import the domain, never the reverse."""

from usage_features.domain.entities import UsageEvent
from usage_features.domain.repository import UsageRepository
from usage_features.domain.value_objects import (
    EARLY_LIFE_DAYS,
    LOW_ADOPTION_THRESHOLD,
    EventType,
    FeatureAdoptionScore,
    is_early_life_churn_signal,
)

__all__ = [
    "EARLY_LIFE_DAYS",
    "LOW_ADOPTION_THRESHOLD",
    "EventType",
    "FeatureAdoptionScore",
    "UsageEvent",
    "UsageRepository",
    "is_early_life_churn_signal",
]

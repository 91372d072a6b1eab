"""The Usage bounded context.

Standard library only: adapters import the domain, never the reverse."""

from usage_features.domain.entities import UsageEvent
from usage_features.domain.repository import (
    ConflictingEventError,
    UsageRepository,
    WritableUsageRepository,
    last_n_days,
    require_aware,
)
from usage_features.domain.value_objects import (
    EARLY_LIFE_DAYS,
    LOW_ADOPTION_THRESHOLD,
    EventType,
    FeatureAdoptionScore,
    early_life_churn_signal,
    is_early_life,
    is_early_life_churn_signal,
)

__all__ = [
    "EARLY_LIFE_DAYS",
    "LOW_ADOPTION_THRESHOLD",
    "ConflictingEventError",
    "EventType",
    "FeatureAdoptionScore",
    "UsageEvent",
    "UsageRepository",
    "WritableUsageRepository",
    "early_life_churn_signal",
    "is_early_life",
    "is_early_life_churn_signal",
    "last_n_days",
    "require_aware",
]

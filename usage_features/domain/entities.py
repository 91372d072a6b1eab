"""UsageEvent entity: the core of the Usage bounded context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from usage_features.domain.value_objects import EventType, FeatureAdoptionScore, is_valid_uuid


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """A single product interaction by a customer.

    Parameters
    ----------
    event_id : str
        UUID primary key (canonical form, stored lower-case). Identity of the event.
    customer_id : str
        Foreign key to the Customer entity; must not be empty.
    timestamp : datetime
        When the event happened; must be timezone-aware, stored in UTC.
    event_type : EventType
        The product action taken (strings are coerced; unknown ones are an error).
    feature_adoption_score : FeatureAdoptionScore
        Adoption score snapshot at the time of the event (floats are coerced).
    """

    event_id: str
    customer_id: str = field(compare=False)
    timestamp: datetime = field(compare=False)
    event_type: EventType = field(compare=False)
    feature_adoption_score: FeatureAdoptionScore = field(compare=False)

    def __post_init__(self) -> None:
        if not is_valid_uuid(self.event_id):
            raise ValueError(f"event_id must be a UUID, got {self.event_id!r}")
        object.__setattr__(self, "event_id", self.event_id.lower())
        if not isinstance(self.customer_id, str) or not self.customer_id.strip():
            raise ValueError(f"customer_id must be a non-empty string, got {self.customer_id!r}")
        if not isinstance(self.timestamp, datetime):
            raise ValueError(f"timestamp must be a datetime, got {self.timestamp!r}")
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() is None:
            raise ValueError(f"timestamp must be timezone-aware, got naive {self.timestamp!r}")
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(timezone.utc))
        try:
            object.__setattr__(self, "event_type", EventType(self.event_type))
        except ValueError:
            known = ", ".join(t.value for t in EventType)
            raise ValueError(
                f"unknown event_type {self.event_type!r}; expected one of: {known}"
            ) from None
        if not isinstance(self.feature_adoption_score, FeatureAdoptionScore):
            object.__setattr__(
                self, "feature_adoption_score", FeatureAdoptionScore(self.feature_adoption_score)
            )

    def same_content_as(self, other: UsageEvent) -> bool:
        """True when every field, not only the identity, is equal."""
        return (
            self.event_id == other.event_id
            and self.customer_id == other.customer_id
            and self.timestamp == other.timestamp
            and self.event_type == other.event_type
            and self.feature_adoption_score == other.feature_adoption_score
        )

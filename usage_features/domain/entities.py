"""UsageEvent entity: the core of the Usage bounded context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from usage_features.domain.value_objects import (
    MAX_EVENT_ID_LENGTH,
    FeatureAdoptionScore,
    is_valid_uuid,
)
from usage_features.domain.vocabulary import normalise_event_name


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """A single product interaction by a customer.

    Parameters
    ----------
    event_id : str
        Primary key: any non-empty text up to 256 characters (a UUID is stored lower-case).
        Identity of the event.
    customer_id : str
        Foreign key to the Customer entity; must not be empty.
    timestamp : datetime
        When the event happened; must be timezone-aware, stored in UTC.
    event_type : str
        The product action taken, a name of the repo's event vocabulary (an ``EventType`` of
        the default one), trimmed and lower-cased.
    feature_adoption_score : FeatureAdoptionScore or None
        Adoption score snapshot at the time of the event (floats are coerced); None when the
        product exports none (adoption then comes from breadth).
    """

    event_id: str
    customer_id: str = field(compare=False)
    timestamp: datetime = field(compare=False)
    event_type: str = field(compare=False)
    feature_adoption_score: FeatureAdoptionScore | None = field(compare=False, default=None)

    def __post_init__(self) -> None:
        if (not isinstance(self.event_id, str) or not self.event_id.strip()
                or len(self.event_id.strip()) > MAX_EVENT_ID_LENGTH):
            raise ValueError(f"event_id must be non-empty text of at most {MAX_EVENT_ID_LENGTH} "
                             f"characters, got {self.event_id!r}")
        event_id = self.event_id.strip()
        object.__setattr__(self, "event_id", event_id.lower() if is_valid_uuid(event_id)
                           else event_id)
        if not isinstance(self.customer_id, str) or not self.customer_id.strip():
            raise ValueError(f"customer_id must be a non-empty string, got {self.customer_id!r}")
        if not isinstance(self.timestamp, datetime):
            raise ValueError(f"timestamp must be a datetime, got {self.timestamp!r}")
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() is None:
            raise ValueError(f"timestamp must be timezone-aware, got naive {self.timestamp!r}")
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(UTC))
        if not isinstance(self.event_type, str) or not normalise_event_name(self.event_type):
            raise ValueError(f"event_type must be a non-empty name, got {self.event_type!r}")
        object.__setattr__(self, "event_type", normalise_event_name(self.event_type))
        if self.feature_adoption_score is not None and not isinstance(
                self.feature_adoption_score, FeatureAdoptionScore):
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

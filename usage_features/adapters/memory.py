"""In-memory UsageRepository: the list-backed fake for unit tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from usage_features.domain.entities import UsageEvent
from usage_features.domain.repository import (
    ConflictingEventError,
    UsageRepository,
    require_aware,
)


class InMemoryUsageRepository(UsageRepository):
    """Keeps events in a dict keyed by event id."""

    def __init__(self, events: Iterable[UsageEvent] = ()) -> None:
        self._events: dict[str, UsageEvent] = {}
        self.add(events)

    def add(self, events: Iterable[UsageEvent]) -> int:
        staged: dict[str, UsageEvent] = {}
        for event in events:
            known = self._events.get(event.event_id) or staged.get(event.event_id)
            if known is None:
                staged[event.event_id] = event
            elif not known.same_content_as(event):
                raise ConflictingEventError(
                    f"event {event.event_id} is already stored with different content"
                )
        self._events.update(staged)
        return len(staged)

    def get_events(self, customer_id: str, since: datetime | None = None) -> list[UsageEvent]:
        since = require_aware(since, "since")
        found = [
            e
            for e in self._events.values()
            if e.customer_id == customer_id and (since is None or e.timestamp > since)
        ]
        return sorted(found, key=lambda e: (e.timestamp, e.event_id))

    def _count_between(self, customer_id: str, start: datetime, end: datetime) -> int:
        return sum(
            1
            for e in self._events.values()
            if e.customer_id == customer_id and start <= e.timestamp < end
        )

"""In-memory UsageRepository, for unit tests and small in-process uses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from usage_features.domain.entities import UsageEvent
from usage_features.domain.repository import (
    ConflictingEventError,
    WritableUsageRepository,
    last_n_days,
    require_aware,
)


class InMemoryUsageRepository(WritableUsageRepository):
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

    def count_events_last_n_days(self, customer_id: str, n_days: int,
                                 as_of: datetime | None = None) -> int:
        start, end = last_n_days(n_days, as_of)
        return sum(
            1
            for e in self._events.values()
            if e.customer_id == customer_id and start <= e.timestamp < end
        )

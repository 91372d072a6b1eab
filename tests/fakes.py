"""A list-backed fake of the UsageRepository port, as an implementer would write one.

It writes the port's two documented methods with the domain's public helpers, and nothing
private; ``add`` is its own (the fake is filled the way the contract fills every adapter).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from usage_features.domain import (
    ConflictingEventError,
    UsageEvent,
    UsageRepository,
    last_n_days,
    require_aware,
)


class ListUsageRepository(UsageRepository):
    def __init__(self, events: Iterable[UsageEvent] = ()) -> None:
        self.events: list[UsageEvent] = []
        self.add(events)

    def add(self, events: Iterable[UsageEvent]) -> int:
        new: list[UsageEvent] = []
        for event in events:
            same_id = [e for e in self.events + new if e.event_id == event.event_id]
            if any(not e.same_content_as(event) for e in same_id):
                raise ConflictingEventError(event.event_id)
            if not same_id:
                new.append(event)
        self.events += new
        return len(new)

    def get_events(self, customer_id: str, since: datetime | None = None) -> list[UsageEvent]:
        since = require_aware(since, "since")
        return sorted((e for e in self.events if e.customer_id == customer_id
                       and (since is None or e.timestamp > since)),
                      key=lambda e: (e.timestamp, e.event_id))

    def count_events_last_n_days(self, customer_id: str, n_days: int,
                                 as_of: datetime | None = None) -> int:
        start, end = last_n_days(n_days, as_of)
        return sum(1 for e in self.events
                   if e.customer_id == customer_id and start <= e.timestamp < end)

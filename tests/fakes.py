"""Fakes of the ports: a list-backed UsageRepository, as an implementer would write one; a
ScoreSink and a Scorer for the use cases' unit tests.

The UsageRepository fake:

It writes the port's two documented methods with the domain's public helpers, and nothing
private; ``add`` is its own (the fake is filled the way the contract fills every adapter).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time

from usage_features.domain import (
    ConflictingEventError,
    UsageEvent,
    UsageRepository,
    last_n_days,
    require_aware,
)
from usage_features.domain.scores import HISTORICAL, ONLINE, Score, Scorer, ScoreSink


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


class ListScoreSink(ScoreSink):
    """Keeps each day's scores in a dict, replacing a day written again (as the port says)."""

    def __init__(self) -> None:
        self.days: dict[date, list[Score]] = {}

    @property
    def name(self) -> str:
        return "a list"

    def write(self, scores, day: date) -> int:
        self.days[day] = list(scores)
        return len(scores)


class DictScorer(Scorer):
    """A scorer fake: each customer's probability from a dict, the online store holding one UTC
    day (``online_day``, materialized through 06:15 that day, or with a build ``pending`` it
    has not loaded); ``now`` is the current time (default noon of that day). Records which path
    answered."""

    def __init__(self, probabilities: dict[str, float], online_day: date,
                 now: datetime | None = None, pending: bool = False) -> None:
        self.probabilities = probabilities
        self.online_day = online_day
        self.held = datetime.combine(online_day, time(6, 15), tzinfo=UTC)
        self.now = now or datetime.combine(online_day, time(12), tzinfo=UTC)
        self.pending = pending
        self.calls: list[str] = []

    def online_problem(self, as_of: datetime) -> str | None:
        day = as_of.astimezone(UTC).date()
        if day != self.online_day:
            return f"{day} is not the online store's day"
        return "a build is not materialized yet" if self.pending else None

    def online_time(self) -> tuple[datetime, str | None]:
        problem = self.online_problem(self.now)
        return (self.now, None) if problem is None else (
            self.held, f"not now ({problem}): answered as of the online store's own time")

    def _scores(self, ids, as_of, source) -> list[Score]:
        self.calls.append(source)
        return [Score(c, as_of, "active", "v1", self.probabilities[c], features_from=source)
                if c in self.probabilities else
                Score(c, as_of, "unknown", "v1", features_from=source, error="unknown")
                for c in ids]

    def score(self, customer_ids, as_of=None) -> list[Score]:
        moment = as_of if as_of is not None else self.online_time()[0]
        if self.online_problem(moment):
            raise ValueError("the online store cannot answer for that time")
        return self._scores(customer_ids, moment, ONLINE)

    def score_historical(self, customer_ids, as_of) -> list[Score]:
        return self._scores(customer_ids, as_of, HISTORICAL)

    def freshness(self, as_of=None, online=True):
        return ("freshness", online)

    def online_freshness(self, as_of=None):
        return ("freshness", True)

"""UsageRepository: the abstract port for the Usage domain."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from usage_features.domain.entities import UsageEvent


class ConflictingEventError(ValueError):
    """An event id is already stored with different content; nothing is overwritten."""


class UsageRepository(abc.ABC):
    """Port for storing and retrieving usage events."""

    @abc.abstractmethod
    def add(self, events: Iterable[UsageEvent]) -> int:
        """Store events; idempotent on ``event_id``. Returns how many were new.

        An event whose id is stored with different content raises
        :class:`ConflictingEventError` and nothing from the call is stored.
        """

    @abc.abstractmethod
    def get_events(self, customer_id: str, since: datetime | None = None) -> list[UsageEvent]:
        """Retrieve a customer's events, oldest first; only those after ``since`` if given."""

    @abc.abstractmethod
    def _count_between(self, customer_id: str, start: datetime, end: datetime) -> int:
        """Count a customer's events with ``start <= timestamp < end``."""

    def count_events_last_n_days(
        self, customer_id: str, n_days: int, as_of: datetime | None = None
    ) -> int:
        """Count events in the last N days: timestamps in ``[as_of - n_days, as_of)``.

        Used as a feature for the churn model: event decay is a leading indicator.
        ``as_of`` defaults to now (UTC) and must be timezone-aware.
        """
        if isinstance(n_days, bool) or not isinstance(n_days, int) or n_days <= 0:
            raise ValueError(f"n_days must be a positive integer, got {n_days!r}")
        end = require_aware(as_of, "as_of") or datetime.now(timezone.utc)
        return self._count_between(customer_id, end - timedelta(days=n_days), end)


def require_aware(moment: datetime | None, name: str) -> datetime | None:
    """Validate an optional timezone-aware datetime and convert it to UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(timezone.utc)

"""UsageRepository: the abstract port for the Usage domain.

The port is the two methods the usage-domain design page documents, both abstract:
``get_events(customer_id, since=None)`` and ``count_events_last_n_days(customer_id, n)``. What
every implementation must check is in public helpers it calls (:func:`require_aware`,
:func:`last_n_days`), so an implementer writes those two methods and nothing private. A store
that also takes events implements :class:`WritableUsageRepository` (``add``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from usage_features.domain.entities import UsageEvent


class ConflictingEventError(ValueError):
    """An event id is already stored with different content; nothing is overwritten."""


class UsageRepository(abc.ABC):
    """Port for retrieving usage events."""

    @abc.abstractmethod
    def get_events(self, customer_id: str, since: datetime | None = None) -> list[UsageEvent]:
        """Retrieve all usage events for a customer, oldest first (ties by event id).

        Parameters
        ----------
        customer_id : str
            The customer whose events to fetch.
        since : datetime, optional
            If provided, return only events strictly after this time (timezone-aware;
            implementations validate it with ``require_aware(since, "since")``).
        """

    @abc.abstractmethod
    def count_events_last_n_days(self, customer_id: str, n_days: int,
                                 as_of: datetime | None = None) -> int:
        """Count events in the last N days: timestamps in ``[as_of - n_days, as_of)``.

        Used as a feature for the churn model: event decay is a leading indicator. ``as_of``
        defaults to now (UTC) and must be timezone-aware; implementations get the validated
        window from ``start, end = last_n_days(n_days, as_of)``.
        """


class WritableUsageRepository(UsageRepository):
    """A usage repository that also stores events."""

    @abc.abstractmethod
    def add(self, events: Iterable[UsageEvent]) -> int:
        """Store events; idempotent on ``event_id``. Returns how many were new.

        An event whose id is stored with different content raises
        :class:`ConflictingEventError` and nothing from the call is stored.
        """


def require_aware(moment: datetime | None, name: str) -> datetime | None:
    """Validate an optional timezone-aware datetime and convert it to UTC."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


def last_n_days(n_days: int, as_of: datetime | None = None) -> tuple[datetime, datetime]:
    """The validated window ``(start, end)`` of :meth:`UsageRepository.count_events_last_n_days`:
    ``end`` is ``as_of`` in UTC (now if omitted), ``start`` is ``n_days`` earlier.

    Raises ``ValueError`` for a window that is not a positive integer or a naive ``as_of``.
    """
    if isinstance(n_days, bool) or not isinstance(n_days, int) or n_days <= 0:
        raise ValueError(f"n_days must be a positive integer, got {n_days!r}")
    end = require_aware(as_of, "as_of") or datetime.now(UTC)
    return end - timedelta(days=n_days), end

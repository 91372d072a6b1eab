"""The contract every UsageRepository adapter passes.

Subclass :class:`UsageRepositoryContract` and provide a ``repository`` fixture that returns an
empty repository.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import T0, make_event
from usage_features.domain.repository import ConflictingEventError


class UsageRepositoryContract:
    def test_get_events_returns_only_the_customers_events_oldest_first(self, repository):
        late = make_event(timestamp=T0 + timedelta(hours=2))
        early = make_event(timestamp=T0)
        other = make_event(customer_id="cust-2", timestamp=T0 + timedelta(hours=1))
        repository.add([late, early, other])

        assert [e.event_id for e in repository.get_events("cust-1")] == [
            early.event_id,
            late.event_id,
        ]

    def test_events_round_trip_with_every_field(self, repository):
        event = make_event(
            timestamp=datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
            event_type="integration_connect",
            feature_adoption_score=0.125,
        )
        repository.add([event])

        (stored,) = repository.get_events("cust-1")
        assert stored.same_content_as(event)
        assert stored.timestamp.tzinfo is not None

    def test_get_events_since_excludes_events_at_or_before_since(self, repository):
        at = make_event(timestamp=T0)
        after = make_event(timestamp=T0 + timedelta(microseconds=1))
        repository.add([at, after])

        assert [e.event_id for e in repository.get_events("cust-1", since=T0)] == [after.event_id]

    def test_get_events_of_an_unknown_customer_is_empty(self, repository):
        repository.add([make_event()])
        assert repository.get_events("nobody") == []

    def test_adding_the_same_event_twice_stores_it_once(self, repository):
        event = make_event()
        assert repository.add([event]) == 1
        assert repository.add([event]) == 0
        assert len(repository.get_events("cust-1")) == 1

    def test_a_conflicting_event_is_rejected_and_nothing_of_the_call_is_stored(self, repository):
        event = make_event(feature_adoption_score=0.5)
        repository.add([event])
        fresh = make_event()
        changed = make_event(event_id=event.event_id, feature_adoption_score=0.9)

        with pytest.raises(ConflictingEventError):
            repository.add([fresh, changed])

        (stored,) = repository.get_events("cust-1")
        assert stored.feature_adoption_score.value == 0.5

    def test_count_includes_an_event_exactly_n_days_before_as_of(self, repository):
        repository.add([make_event(timestamp=T0 - timedelta(days=7))])
        assert repository.count_events_last_n_days("cust-1", 7, as_of=T0) == 1

    def test_count_excludes_events_older_than_window(self, repository):
        repository.add([make_event(timestamp=T0 - timedelta(days=7, microseconds=1))])
        assert repository.count_events_last_n_days("cust-1", 7, as_of=T0) == 0

    def test_count_excludes_an_event_at_as_of(self, repository):
        repository.add([make_event(timestamp=T0)])
        assert repository.count_events_last_n_days("cust-1", 7, as_of=T0) == 0

    def test_count_only_counts_the_given_customer(self, repository):
        repository.add(
            [
                make_event(timestamp=T0 - timedelta(days=1)),
                make_event(customer_id="cust-2", timestamp=T0 - timedelta(days=1)),
            ]
        )
        assert repository.count_events_last_n_days("cust-1", 30, as_of=T0) == 1

    def test_count_defaults_as_of_to_now(self, repository):
        now = datetime.now(UTC)
        repository.add(
            [
                make_event(timestamp=now - timedelta(days=1)),
                make_event(timestamp=now - timedelta(days=40)),
            ]
        )
        assert repository.count_events_last_n_days("cust-1", 30) == 1

    @pytest.mark.parametrize("n_days", [0, -1, 1.5, True])
    def test_count_rejects_a_window_that_is_not_a_positive_integer(self, repository, n_days):
        with pytest.raises(ValueError, match="n_days"):
            repository.count_events_last_n_days("cust-1", n_days, as_of=T0)

    def test_count_rejects_a_naive_as_of(self, repository):
        with pytest.raises(ValueError, match="timezone-aware"):
            repository.count_events_last_n_days("cust-1", 7, as_of=datetime(2026, 3, 1))

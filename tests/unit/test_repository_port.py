"""The UsageRepository port: two documented abstract methods, public helpers, a list-backed fake."""

from datetime import datetime, timedelta, timezone

import pytest

from tests.contract import UsageRepositoryContract
from tests.factories import T0, make_event
from tests.fakes import ListUsageRepository
from usage_features.adapters.memory import InMemoryUsageRepository
from usage_features.adapters.parquet_repository import ParquetUsageRepository
from usage_features.adapters.postgres import PostgresUsageRepository
from usage_features.domain import (
    UsageRepository,
    WritableUsageRepository,
    last_n_days,
    require_aware,
)


class TestThePort:
    def test_the_abstract_methods_are_the_two_the_design_page_documents(self):
        assert UsageRepository.__abstractmethods__ == {"get_events",
                                                       "count_events_last_n_days"}

    def test_a_writable_repository_adds_only_add(self):
        assert WritableUsageRepository.__abstractmethods__ == {
            "get_events", "count_events_last_n_days", "add"}

    def test_the_port_has_no_private_methods_to_implement(self):
        assert not [name for name, value in vars(UsageRepository).items()
                    if name.startswith("_") and not name.startswith("__") and callable(value)]

    @pytest.mark.parametrize("adapter", [InMemoryUsageRepository, ParquetUsageRepository,
                                         PostgresUsageRepository, ListUsageRepository])
    def test_every_adapter_and_the_fake_subclass_the_port(self, adapter):
        assert issubclass(adapter, UsageRepository)

    def test_an_implementation_of_only_the_documented_methods_can_be_made(self):
        class Minimal(UsageRepository):
            def get_events(self, customer_id, since=None):
                return []

            def count_events_last_n_days(self, customer_id, n_days, as_of=None):
                return 0

        assert Minimal().get_events("x") == []


class TestLastNDays:
    def test_the_window_ends_at_as_of_and_spans_n_days(self):
        assert last_n_days(7, T0) == (T0 - timedelta(days=7), T0)

    def test_as_of_is_converted_to_utc(self):
        local = datetime(2026, 3, 1, 2, tzinfo=timezone(timedelta(hours=2)))
        _, end = last_n_days(1, local)
        assert end == T0 and end.utcoffset() == timedelta(0)

    @pytest.mark.parametrize("n_days", [0, -1, 1.5, True, "7"])
    def test_a_window_that_is_not_a_positive_integer_is_refused(self, n_days):
        with pytest.raises(ValueError, match="n_days"):
            last_n_days(n_days, T0)

    def test_a_naive_as_of_is_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            last_n_days(7, datetime(2026, 3, 1))

    def test_require_aware_refuses_something_that_is_not_a_datetime(self):
        with pytest.raises(TypeError, match="since must be a datetime"):
            require_aware("2026-03-01", "since")


class TestListUsageRepository(UsageRepositoryContract):
    @pytest.fixture
    def repository(self):
        return ListUsageRepository()

    def test_it_is_filled_from_its_constructor(self):
        assert len(ListUsageRepository([make_event(), make_event()]).get_events("cust-1")) == 2

import pytest

from tests.contract import UsageRepositoryContract
from usage_features.adapters.memory import InMemoryUsageRepository


class TestInMemoryUsageRepository(UsageRepositoryContract):
    @pytest.fixture
    def repository(self):
        return InMemoryUsageRepository()

import pytest

from usage_features.adapters.memory import InMemoryUsageRepository
from tests.contract import UsageRepositoryContract


class TestInMemoryUsageRepository(UsageRepositoryContract):
    @pytest.fixture
    def repository(self):
        return InMemoryUsageRepository()

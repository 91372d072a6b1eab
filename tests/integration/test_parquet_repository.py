import pytest

from usage_features.adapters.parquet_repository import ParquetUsageRepository
from usage_features.config import RepoPaths
from tests.contract import UsageRepositoryContract


class TestParquetUsageRepository(UsageRepositoryContract):
    @pytest.fixture
    def repository(self, tmp_path):
        return ParquetUsageRepository(RepoPaths(tmp_path / "repo"))

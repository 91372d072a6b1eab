import pytest

from tests.contract import UsageRepositoryContract
from usage_features.config import RepoPaths
from usage_features.ingestion.ingest import event_repository


class TestParquetUsageRepository(UsageRepositoryContract):
    @pytest.fixture
    def repository(self, tmp_path):
        return event_repository(RepoPaths(tmp_path / "repo"))

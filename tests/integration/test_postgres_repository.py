"""The PostgreSQL adapter against the real server (skipped, with the reason, when absent)."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest

from usage_features.adapters.postgres import DEFAULT_DSN, PostgresUsageRepository
from tests.conftest import require_service
from tests.contract import UsageRepositoryContract
from tests.factories import T0, make_event

pytestmark = pytest.mark.postgres
DSN = os.environ.get("USAGE_FEATURES_POSTGRES_DSN", DEFAULT_DSN)


@pytest.fixture
def repository():
    psycopg = pytest.importorskip("psycopg")
    params = psycopg.conninfo.conninfo_to_dict(DSN)
    require_service(params.get("host", "127.0.0.1"), int(params.get("port", 5432)),
                    "PostgreSQL", "start it, or point USAGE_FEATURES_POSTGRES_DSN at one")
    table = f"usage_events_test_{uuid.uuid4().hex[:10]}"
    repo = PostgresUsageRepository.connect(DSN, table)
    yield repo
    with repo.connection.transaction():
        repo.connection.execute(psycopg.sql.SQL("DROP TABLE IF EXISTS {}").format(repo.table))
    repo.connection.close()


class TestPostgresUsageRepository(UsageRepositoryContract):
    def test_creating_the_schema_twice_is_harmless(self, repository):
        repository.add([make_event()])
        repository.create_schema()
        assert len(repository.get_events("cust-1")) == 1

    def test_the_table_has_its_primary_key_and_lookup_index(self, repository):
        table = repository.table.as_string(repository.connection).strip('"')
        rows = repository.connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (table,)).fetchall()
        definitions = " ".join(r[0] for r in rows)
        assert "(event_id)" in definitions and "(customer_id, \"timestamp\")" in definitions

    def test_a_large_batch_is_added_in_one_call(self, repository):
        events = [make_event(customer_id=f"c{i % 50}", timestamp=T0 - timedelta(minutes=i))
                  for i in range(5000)]
        assert repository.add(events) == 5000
        assert repository.count_events_last_n_days("c7", 30, as_of=T0 + timedelta(seconds=1)) \
            == 100

"""The PostgreSQL adapter against the real server (skipped, with the reason, when absent)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, timedelta

import psycopg
import pytest
from psycopg import sql

from tests.contract import UsageRepositoryContract
from tests.factories import T0, make_event
from usage_features.adapters.postgres import PostgresUsageRepository
from usage_features.domain.repository import ConflictingEventError


@pytest.fixture
def table_name() -> str:
    return f"usage_events_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def repository(postgres_dsn, table_name):
    repo = PostgresUsageRepository.connect(postgres_dsn, table_name)
    yield repo
    repo.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table_name)))


@pytest.mark.postgres
class TestPostgresUsageRepository(UsageRepositoryContract):
    def test_creating_the_schema_twice_is_harmless(self, repository):
        repository.add([make_event()])
        repository.create_schema()
        repository.create_schema()
        assert len(repository.get_events("cust-1")) == 1

    def test_the_table_has_its_primary_key_and_customer_time_index(self, repository, table_name):
        connection = repository.connection
        (primary_key,) = connection.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'p'", (table_name,)).fetchone()
        definitions = [row[0] for row in connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (table_name,))]
        assert primary_key == "PRIMARY KEY (event_id)"
        assert any(d.endswith('USING btree (customer_id, "timestamp")') for d in definitions)

    def test_counting_can_use_the_customer_time_index(self, repository, table_name):
        with repository.connection.transaction():
            repository.connection.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(row[0] for row in repository.connection.execute(sql.SQL(
                "EXPLAIN SELECT count(*) FROM {} WHERE customer_id = %s "
                "AND timestamp >= %s AND timestamp < %s").format(sql.Identifier(table_name)),
                ("cust-1", T0 - timedelta(days=7), T0)))
        assert f"{table_name}_customer_time" in plan and "Seq Scan" not in plan

    def test_a_batch_of_5000_events_is_added_in_one_call(self, repository):
        events = [make_event(customer_id=f"c{i % 50}", timestamp=T0 - timedelta(minutes=i))
                  for i in range(5000)]
        assert repository.add(events) == 5000
        assert repository.add(events) == 0
        assert repository.count_events_last_n_days("c7", 30, as_of=T0 + timedelta(seconds=1)) \
            == 100
        assert len(repository.get_events("c7")) == 100

    def test_adding_nothing_adds_nothing(self, repository):
        assert repository.add([]) == 0

    def test_duplicates_within_a_call_with_the_same_content_are_stored_once(self, repository):
        event = make_event()
        assert repository.add([event, event, make_event()]) == 2
        assert len(repository.get_events("cust-1")) == 2

    def test_duplicates_within_a_call_with_different_content_are_rejected(self, repository):
        event = make_event(feature_adoption_score=0.5)
        changed = make_event(event_id=event.event_id, feature_adoption_score=0.9)

        with pytest.raises(ConflictingEventError, match=event.event_id):
            repository.add([make_event(), event, changed])

        assert repository.get_events("cust-1") == []

    def test_a_concurrent_writer_of_the_same_id_with_other_content_is_rejected(
            self, repository, postgres_dsn, table_name):
        event = make_event(feature_adoption_score=0.1)
        changed = make_event(event_id=event.event_id, feature_adoption_score=0.9)
        outcome: dict = {}
        with PostgresUsageRepository.connect(postgres_dsn, table_name) as other, \
                psycopg.connect(postgres_dsn, autocommit=True) as observer:
            def add_changed():
                try:
                    outcome["added"] = other.add([make_event(customer_id="cust-2"), changed])
                except Exception as exc:  # handed to the main thread
                    outcome["error"] = exc

            writer = threading.Thread(target=add_changed)
            with repository.connection.transaction():
                repository.add([event])  # not committed yet: the other writer must wait
                writer.start()
                waiting = _wait_until_blocked(observer, other.connection.info.backend_pid)
            writer.join(timeout=10)

        assert waiting, "the second writer never waited on the first one's row"
        assert isinstance(outcome.get("error"), ConflictingEventError), outcome
        assert repository.get_events("cust-2") == []
        (stored,) = repository.get_events("cust-1")
        assert stored.feature_adoption_score.value == 0.1

    def test_two_adds_in_the_callers_transaction_commit_with_it(self, repository):
        with repository.connection.transaction():
            assert repository.add([make_event()]) == 1
            assert repository.add([make_event()]) == 1
            assert len(repository.get_events("cust-1")) == 2
        assert len(repository.get_events("cust-1")) == 2

    def test_adds_in_the_callers_transaction_roll_back_with_it(self, repository):
        with repository.connection.transaction():
            repository.add([make_event()])
            raise psycopg.Rollback()
        assert repository.get_events("cust-1") == []

    def test_timestamps_come_back_in_utc_whatever_the_session_time_zone(self, repository):
        event = make_event(timestamp=T0 + timedelta(hours=3, microseconds=7))
        repository.add([event])
        repository.connection.execute("SET TimeZone = 'America/New_York'")

        (stored,) = repository.get_events("cust-1")
        assert stored.timestamp == event.timestamp and stored.timestamp.tzinfo == UTC

    def test_a_repository_on_the_callers_connection_leaves_it_open(self, postgres_dsn, table_name):
        with psycopg.connect(postgres_dsn) as connection:
            repo = PostgresUsageRepository(connection, table_name)
            repo.create_schema()
            assert repo.add([make_event()]) == 1
            assert len(repo.get_events("cust-1")) == 1
            assert connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            repo.close()
            assert not connection.closed
            connection.execute(sql.SQL("DROP TABLE {}").format(repo.table))
            connection.commit()


def _wait_until_blocked(connection: psycopg.Connection, pid: int, timeout: float = 10) -> bool:
    """Poll until backend ``pid`` waits on a lock (``connection`` in autocommit: no stale view)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (blocked,) = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
            (pid,)).fetchone()
        if blocked:
            return True
        time.sleep(0.02)
    return False


class TestConstruction:
    def test_building_from_a_conninfo_does_not_connect(self):
        PostgresUsageRepository("postgresql://nobody@127.0.0.1:1/nowhere")

    @pytest.mark.parametrize("table", ["", "x" * 50, "bad\x00name", None])
    def test_an_unusable_table_name_is_rejected(self, table):
        with pytest.raises(ValueError, match="table"):
            PostgresUsageRepository("postgresql://nobody@127.0.0.1:1/nowhere", table)

    def test_any_other_table_name_is_quoted_not_interpolated(self):
        repo = PostgresUsageRepository("", 'events"; DROP TABLE x; --')
        assert repo.table == sql.Identifier('events"; DROP TABLE x; --')

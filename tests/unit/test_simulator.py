"""The simulator's contract: determinism, schemas, valid and consistent events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from usage_features.domain.value_objects import EventType, is_valid_uuid
from usage_features.schema import CUSTOMER_SCHEMA, EVENT_SCHEMA
from usage_features.simulation import SimulationConfig, simulate, write_simulation

SMALL = SimulationConfig(customers=300, days=120, seed=3, start=date(2026, 1, 1))


@pytest.fixture(scope="module")
def sim():
    return simulate(SMALL)


@pytest.fixture(scope="module")
def joined(sim):
    """Every event with its customer's signup_at and churned_at (pandas)."""
    customers = sim.customers.to_pandas().set_index("customer_id")
    return sim.events.to_pandas().join(customers, on="customer_id")


def file_bytes(sim, directory) -> list[bytes]:
    return [path.read_bytes() for path in write_simulation(sim, directory)]


class TestDeterminism:
    def test_the_same_config_writes_byte_identical_files(self, tmp_path):
        first = file_bytes(simulate(SMALL), tmp_path / "a")
        second = file_bytes(simulate(SMALL), tmp_path / "b")
        assert first == second

    def test_a_different_seed_gives_different_events_and_customers(self, sim, tmp_path):
        other = simulate(SimulationConfig(customers=300, days=120, seed=4))
        assert not other.events.equals(sim.events)
        assert not other.customers.equals(sim.customers)
        assert file_bytes(other, tmp_path / "a") != file_bytes(sim, tmp_path / "b")

    def test_the_default_year_is_a_fixed_past_year_not_today(self):
        # fixed for reproducibility, and over before today so every event is ingestible
        config = SimulationConfig()
        assert config.start == date(2025, 1, 1)
        assert config.start + timedelta(days=config.days) <= date.today()

    def test_the_defaults_are_a_year_of_a_thousand_clean_customers(self):
        config = SimulationConfig()
        assert (config.customers, config.days, config.dirty_fraction) == (1000, 365, 0.0)

    def test_the_first_event_is_on_or_after_the_start_date(self, sim):
        start = datetime(2026, 1, 1, tzinfo=UTC)
        assert pc.min(sim.events["timestamp"]).as_py() >= start


class TestSchemas:
    def test_events_have_exactly_the_event_schema(self, sim):
        assert sim.events.schema.equals(EVENT_SCHEMA, check_metadata=True)

    def test_customers_have_exactly_the_customer_schema(self, sim):
        assert sim.customers.schema.equals(CUSTOMER_SCHEMA, check_metadata=True)

    def test_written_files_read_back_with_the_same_schemas_and_rows(self, sim, tmp_path):
        events_path, customers_path = write_simulation(sim, tmp_path / "out")
        assert (events_path.name, customers_path.name) == ("events.parquet", "customers.parquet")
        events, customers = pq.read_table(events_path), pq.read_table(customers_path)
        assert events.schema.equals(EVENT_SCHEMA) and events.equals(sim.events)
        assert customers.schema.equals(CUSTOMER_SCHEMA) and customers.equals(sim.customers)

    def test_events_are_sorted_by_timestamp(self, sim):
        ts = sim.events["timestamp"].to_numpy()
        assert (np.diff(ts.astype(np.int64)) >= 0).all()

    def test_customers_are_listed_once_each_in_customer_id_order(self, sim):
        ids = sim.customers["customer_id"].to_pylist()
        assert ids == sorted(ids) and len(set(ids)) == SMALL.customers


class TestEvents:
    def test_event_ids_are_unique_valid_version_4_uuids(self, sim):
        ids = sim.events["event_id"].to_pylist()
        assert len(set(ids)) == len(ids)
        assert all(is_valid_uuid(i) for i in ids)
        assert all(i[14] == "4" and i[19] in "89ab" and i == i.lower() for i in ids)

    def test_every_event_type_is_an_event_type_and_all_are_used(self, sim):
        used = set(pc.unique(sim.events["event_type"]).to_pylist())
        assert used == {t.value for t in EventType}

    def test_scores_are_within_the_unit_interval(self, sim):
        scores = sim.events["feature_adoption_score"]
        assert pc.min(scores).as_py() >= 0.0 and pc.max(scores).as_py() <= 1.0

    def test_every_event_belongs_to_a_known_customer(self, joined):
        assert joined.signup_at.notna().all()

    def test_events_lie_between_signup_and_churn(self, joined):
        assert (joined.timestamp >= joined.signup_at).all()
        churned = joined[joined.churned_at.notna()]
        assert (churned.timestamp < churned.churned_at).all()

    def test_churned_customers_have_no_event_at_or_after_churned_at(self, joined):
        last = joined.groupby("customer_id").agg(last=("timestamp", "max"),
                                                 churned_at=("churned_at", "first"))
        churned = last.dropna(subset=["churned_at"])
        assert len(churned) > 10
        assert (churned["last"] < churned["churned_at"]).all()

    def test_signups_and_churns_fall_within_the_period(self, sim):
        customers = sim.customers.to_pandas()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        end = start + timedelta(days=SMALL.days)
        assert customers.signup_at.between(start, end, inclusive="left").all()
        churned = customers.dropna(subset=["churned_at"])
        assert (churned.churned_at > churned.signup_at).all() and (churned.churned_at < end).all()

    def test_every_plan_is_represented(self, sim):
        plans = set(pc.unique(sim.customers["plan"]).to_pylist())
        assert plans == {"free", "starter", "pro", "enterprise"}

    def test_events_of_a_customer_are_on_many_days(self, joined):
        days = joined.assign(day=joined.timestamp.dt.floor("D")).groupby("customer_id").day
        assert days.nunique().median() >= 10


class TestConfig:
    @pytest.mark.parametrize("changes", [
        {"customers": 0}, {"days": 0}, {"seed": -1}, {"dirty_fraction": 1.0},
        {"dirty_fraction": -0.1}, {"customers": 2.5}, {"start": datetime(2026, 1, 1)},
    ])
    def test_rejects_unusable_settings(self, changes):
        with pytest.raises(ValueError):  # noqa: PT011 - each setting has its own message
            SimulationConfig(**changes)

    def test_accepts_an_iso_start_date(self):
        assert SimulationConfig(start="2026-03-01").start == date(2026, 3, 1)

    def test_a_start_date_moves_every_timestamp(self):
        later = simulate(SimulationConfig(customers=20, days=10, seed=1, start=date(2026, 3, 1)))
        first = pc.min(later.customers["signup_at"]).as_py()
        assert first >= datetime(2026, 3, 1, tzinfo=UTC)

    def test_a_single_customer_for_a_single_day_works(self):
        tiny = simulate(SimulationConfig(customers=1, days=1, seed=0))
        assert tiny.customers.num_rows == 1
        assert tiny.events.schema.equals(EVENT_SCHEMA)


class TestTruth:
    def test_names_each_customers_churn_mode(self, sim):
        truth = sim.truth.to_pandas()
        assert truth.customer_id.tolist() == sim.customers["customer_id"].to_pylist()
        assert set(truth.churn_mode) <= {"none", "sudden", "decay"}

    def test_every_churned_customer_decided_to_leave(self, sim):
        truth = sim.truth.to_pandas()
        churned = sim.customers["churned_at"].is_valid().to_numpy(zero_copy_only=False)
        assert (truth.churn_mode[churned] != "none").all()



class TestStreamingToFiles:
    """``simulate_to_files`` writes a day at a time: the same bytes as the in-memory path."""

    def test_writes_the_same_bytes_as_simulating_in_memory(self, tmp_path, monkeypatch):
        from usage_features.simulation import simulate_to_files, tables, writer

        # small chunks (and row groups to match) so that days straddle many chunk boundaries
        monkeypatch.setattr(tables, "CHUNK_ROWS", 997)
        monkeypatch.setitem(writer.PARQUET_OPTIONS, "row_group_size", 997)
        config = SimulationConfig(customers=40, days=60, seed=5)
        memory = file_bytes(simulate(config), tmp_path / "memory")
        written = simulate_to_files(config, tmp_path / "stream")
        assert [written.events_path.read_bytes(), written.customers_path.read_bytes()] == memory
        sim = simulate(config)
        assert written.events == sim.events.num_rows > 997 * 3
        assert written.churned == len(sim.customers.column("churned_at").drop_null())

    def test_dirty_output_is_the_in_memory_simulation_written(self, tmp_path):
        from usage_features.simulation import simulate_to_files

        config = SimulationConfig(customers=20, days=30, seed=2, dirty_fraction=0.05)
        written = simulate_to_files(config, tmp_path / "stream")
        memory = file_bytes(simulate(config), tmp_path / "memory")
        assert [written.events_path.read_bytes(), written.customers_path.read_bytes()] == memory

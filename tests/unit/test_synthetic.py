"""The simulator: deterministic, valid, and carrying each churn signal it claims to plant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from usage_features.domain import EventType
from usage_features.domain.value_objects import is_valid_uuid
from usage_features.schema import CUSTOMER_SCHEMA, EVENT_SCHEMA
from usage_features.synthetic import SimulationConfig, simulate, write_simulation
from usage_features.synthetic.dirty import KINDS

SMALL = SimulationConfig(customers=200, days=120, seed=3)


@pytest.fixture(scope="module")
def population():
    sim = simulate(SimulationConfig(customers=3000, days=300, seed=11))
    return sim.events.to_pandas(), sim.customers.to_pandas()


class TestDeterminismAndSchema:
    def test_the_same_seed_writes_byte_identical_files(self, tmp_path):
        first = write_simulation(simulate(SMALL), tmp_path / "a")
        second = write_simulation(simulate(SMALL), tmp_path / "b")
        assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]

    def test_another_seed_gives_other_data(self, tmp_path):
        other = SimulationConfig(customers=200, days=120, seed=4)
        assert not simulate(SMALL).events.equals(simulate(other).events)

    def test_tables_have_the_storage_schemas(self):
        sim = simulate(SMALL)
        assert sim.events.schema == EVENT_SCHEMA
        assert sim.customers.schema == CUSTOMER_SCHEMA

    def test_events_are_sorted_by_time(self):
        ts = simulate(SMALL).events["timestamp"].to_numpy()
        assert (np.diff(ts.astype("int64")) >= 0).all()


class TestValidity:
    def test_every_event_is_valid(self, population):
        events, _ = population
        assert events.event_id.is_unique
        assert all(is_valid_uuid(e) for e in events.event_id.sample(5000, random_state=0))
        assert set(events.event_type) == {t.value for t in EventType}
        assert events.feature_adoption_score.between(0, 1).all()

    def test_events_lie_between_signup_and_churn(self, population):
        events, customers = population
        joined = events.merge(customers, on="customer_id")
        assert (joined.timestamp >= joined.signup_at.dt.floor("D")).all()
        churned = joined[joined.churned_at.notna()]
        assert (churned.timestamp < churned.churned_at).all()

    def test_the_size_scales_to_about_a_thousand_events_per_customer_year(self, population):
        events, customers = population
        per_customer_year = len(events) / len(customers) * 365 / 300
        assert 500 < per_customer_year < 2000


def weekly_counts_before(events, customers, weeks_before: int) -> pd.Series:
    """Events in the week ``weeks_before`` weeks before churn, for churners with 90+ days."""
    churners = customers.dropna(subset=["churned_at"])
    churners = churners[churners.churned_at - churners.signup_at > pd.Timedelta(days=90)]
    churned_at = churners.set_index("customer_id").churned_at
    joined = events[events.customer_id.isin(churned_at.index)].copy()
    joined["weeks_to_churn"] = ((joined.customer_id.map(churned_at) - joined.timestamp)
                                / pd.Timedelta(days=7)).astype(int)
    counts = joined[joined.weeks_to_churn == weeks_before].groupby("customer_id").size()
    return counts.reindex(churned_at.index, fill_value=0)


def churn_rate(customers: pd.DataFrame, mask: pd.Series) -> float:
    return customers.loc[mask, "churned_at"].notna().mean()


class TestPlantedSignals:
    def test_churners_use_the_product_less_and_less_before_churn(self, population):
        events, customers = population
        weekly = [weekly_counts_before(events, customers, w).mean() for w in (6, 3, 1, 0)]
        assert weekly == sorted(weekly, reverse=True)
        assert weekly[-1] < 0.5 * weekly[0]

    def test_customers_with_an_integration_churn_less(self, population):
        events, customers = population
        integrated = customers.customer_id.isin(
            events.loc[events.event_type == "integration_connect", "customer_id"])
        assert churn_rate(customers, integrated) < 0.75 * churn_rate(customers, ~integrated)

    def test_customers_who_rarely_run_monitors_churn_more(self, population):
        events, customers = population
        share = (events.assign(run=events.event_type == "monitoring_run")
                 .groupby("customer_id").run.mean())
        rare = customers.customer_id.map(share).fillna(0) < 0.03
        assert churn_rate(customers, rare) > 1.5 * churn_rate(customers, ~rare)

    def test_low_adoption_early_in_life_means_early_churn(self, population):
        events, customers = population
        first_month = events.merge(customers, on="customer_id")
        first_month = first_month[first_month.timestamp < first_month.signup_at
                                  + pd.Timedelta(days=60)]
        low = customers.customer_id.map(
            first_month.groupby("customer_id").feature_adoption_score.mean()) < 0.15
        early_churn = customers.churned_at < customers.signup_at + pd.Timedelta(days=90)
        assert early_churn[low].mean() > 1.5 * early_churn[~low].mean()

    def test_some_churners_leave_without_warning(self, population):
        events, customers = population
        late = weekly_counts_before(events, customers, 0)
        early = weekly_counts_before(events, customers, 10)
        unwarned = (late >= 0.8 * early) & (early > 5)
        assert 0.05 < unwarned.mean() < 0.5


class TestDirtyMode:
    def test_about_the_requested_share_is_corrupted_in_every_way(self):
        sim = simulate(SimulationConfig(customers=200, days=120, seed=3, dirty_fraction=0.1))
        clean = simulate(SMALL)
        assert sim.events.num_rows == clean.events.num_rows
        changed = ~np.array(pc.equal(sim.events["event_id"], clean.events["event_id"]))
        bad_ids = (~np.array([is_valid_uuid(e) for e in sim.events["event_id"].to_pylist()]))
        assert 0.005 < bad_ids.mean() < 0.03  # one kind of eight
        assert changed.mean() < 0.1
        assert sim.events["feature_adoption_score"].null_count > 0
        assert "page_teleport" in set(sim.events["event_type"].to_pylist())
        assert len(KINDS) == 8

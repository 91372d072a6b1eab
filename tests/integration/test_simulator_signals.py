"""The planted churn signals are there, and so is the noise that keeps the task honest.

Every check compares observable data only (events and the customers table), on 2000 customers
over 180 days, for two seeds.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from usage_features.domain.value_objects import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD
from usage_features.simulation import SimulationConfig, simulate

DAYS = 180
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module", params=[11, 12], ids=lambda seed: f"seed{seed}")
def data(request):
    sim = simulate(SimulationConfig(customers=2000, days=DAYS, seed=request.param,
                                    start=date(2026, 1, 1)))
    events = sim.events.to_pandas()
    customers = sim.customers.to_pandas().set_index("customer_id")
    customers["churned"] = customers.churned_at.notna()
    end = pd.Timestamp("2026-01-01", tz="UTC") + DAYS * DAY
    return events, customers, end


def churn_rate_by(customers: pd.DataFrame, flag: pd.Series) -> tuple[float, float]:
    """(churn rate where ``flag``, churn rate elsewhere)."""
    flag = flag.reindex(customers.index, fill_value=False).astype(bool)
    return customers.churned[flag].mean(), customers.churned[~flag].mean()


def uses(events: pd.DataFrame, event_type: str) -> pd.Series:
    return events[events.event_type == event_type].groupby("customer_id").size() > 0


def last_30_vs_previous_30(events: pd.DataFrame, reference: pd.Series) -> pd.Series:
    """Per customer: (events in the 30 days before ``reference`` + 1) / (the 30 before + 1)."""
    mine = events[events.customer_id.isin(reference.index)]
    age = (mine.customer_id.map(reference) - mine.timestamp) / DAY
    last = mine[(age > 0) & (age <= 30)].groupby("customer_id").size()
    previous = mine[(age > 30) & (age <= 60)].groupby("customer_id").size()
    last, previous = (s.reindex(reference.index, fill_value=0) for s in (last, previous))
    return (last + 1) / (previous + 1)


@pytest.fixture(scope="module")
def decay_ratios(data):
    """Churners at their churn time vs retained customers at the end, tenure >= 60 days."""
    events, customers, end = data
    long_lived = customers.churned_at > customers.signup_at + 60 * DAY
    churners = customers[customers.churned & long_lived]
    retained = customers[~customers.churned & (end - customers.signup_at > 60 * DAY)]
    reference = pd.concat([churners.churned_at, pd.Series(end, index=retained.index)])
    ratios = last_30_vs_previous_30(events, reference)
    return ratios[churners.index], ratios[retained.index]


class TestPlantedSignals:
    def test_churners_use_the_product_less_and_less_before_they_churn(self, decay_ratios):
        churners, retained = decay_ratios
        assert len(churners) >= 50
        assert churners.median() < 0.6
        assert retained.median() > 0.85

    def test_churners_weekly_counts_fall_week_after_week(self, data):
        events, customers, _ = data
        tenure_at_churn = customers.churned_at - customers.signup_at
        churners = customers[customers.churned & (tenure_at_churn > 70 * DAY)]
        mine = events[events.customer_id.isin(churners.index)]
        weeks_before = ((mine.customer_id.map(churners.churned_at) - mine.timestamp) / DAY) // 7
        weekly = mine[weeks_before < 8].groupby(weeks_before).size()  # week 0: the last week
        # Fewer and fewer events as churn nears (every other week, to step over noise).
        assert weekly[0] < weekly[2] < weekly[4] < weekly[7]
        assert weekly[0] < 0.6 * weekly[7]

    def test_customers_who_connect_an_integration_churn_less(self, data):
        events, customers, _ = data
        connected, not_connected = churn_rate_by(customers, uses(events, "integration_connect"))
        assert connected < 0.6 * not_connected

    def test_customers_who_never_run_monitoring_churn_more(self, data):
        events, customers, _ = data
        monitoring, never = churn_rate_by(customers, uses(events, "monitoring_run"))
        assert never > 1.4 * monitoring

    def test_low_adoption_in_early_life_is_followed_by_more_churn(self, data):
        events, customers, end = data
        # Customers still there after 45 days; their score over days 30-45 of tenure.
        seen = customers[(customers.signup_at + 45 * DAY <= end)
                         & ~(customers.churned_at < customers.signup_at + 45 * DAY)]
        tenure = (events.timestamp - events.customer_id.map(customers.signup_at)) / DAY
        assert EARLY_LIFE_DAYS > 45
        window = events[(tenure >= 30) & (tenure < 45)]
        score = window.groupby("customer_id").feature_adoption_score.mean()
        low = score.reindex(seen.index, fill_value=0.0) < LOW_ADOPTION_THRESHOLD
        low_rate, other_rate = churn_rate_by(seen, low)
        assert low.sum() >= 30
        assert low_rate > 1.5 * other_rate

    def test_free_customers_churn_more_than_enterprise_ones(self, data):
        _, customers, _ = data
        rates = customers.groupby("plan").churned.mean()
        assert rates["free"] > 2 * rates["enterprise"]


class TestRealism:
    def test_some_churners_leave_without_warning(self, decay_ratios):
        churners, _ = decay_ratios
        assert 0.03 < (churners > 0.8).mean() < 0.4

    def test_some_retained_customers_decay_without_churning(self, decay_ratios):
        _, retained = decay_ratios
        assert 0.01 < (retained < 0.5).mean() < 0.2

    def test_a_minority_of_customers_churn(self, data):
        _, customers, _ = data
        assert 0.08 < customers.churned.mean() < 0.35

    def test_weekends_are_quieter_than_weekdays(self, data):
        events, _, _ = data
        per_day = events.groupby(events.timestamp.dt.floor("D")).size()
        weekend = per_day.index.dayofweek >= 5
        assert per_day[weekend].mean() < 0.6 * per_day[~weekend].mean()

    def test_adoption_grows_with_tenure(self, data):
        events, customers, _ = data
        tenure = (events.timestamp - events.customer_id.map(customers.signup_at)) / DAY
        early = events.feature_adoption_score[tenure < 7].median()
        later = events.feature_adoption_score[tenure > 60].median()
        assert later > early + 0.2

    def test_activity_varies_widely_between_customers(self, data):
        events, customers, end = data
        alive_days = ((customers.churned_at.fillna(end) - customers.signup_at) / DAY).clip(lower=1)
        rate = events.groupby("customer_id").size().reindex(customers.index, fill_value=0)
        rate = (rate / alive_days)[alive_days > 30]
        assert np.percentile(rate, 90) > 4 * np.percentile(rate, 10)

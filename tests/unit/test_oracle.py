"""The churn oracle: computed from the simulator's hidden state, and calibrated on its data."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from usage_features.simulation import Behaviour, SimulationConfig, simulate
from usage_features.simulation.config import GRADUAL
from usage_features.simulation.oracle import (
    LOW_ADOPTION,
    NOT_MONITORING,
    HiddenState,
    churn_probability,
    onset_for_rows,
    onset_probability,
    oracle_for_rows,
)
from usage_features.simulation.population import DAY_US, NEVER
from usage_features.training.labels import observation_rows

START = pd.Timestamp("2025-01-01", tz="UTC")
DAYS = 200


def hidden(n: int, **arrays) -> HiddenState:
    """``n`` identical customers (signed up on day 0, starter plan, no decision, no risk flag)
    unless ``arrays`` say otherwise."""
    base = dict(
        customer_ids=np.array([f"c{i}" for i in range(n)], dtype=object),
        start_us=int(START.value // 1000), days=DAYS, behaviour=Behaviour(),
        signup_day=np.zeros(n, np.int32), signup_tod=np.zeros(n, np.int64),
        churn_tod=np.full(n, DAY_US // 2, np.int64), plan_hazard=np.ones(n),
        latent_risk=np.ones(n), integration_day=np.full(n, NEVER, np.int32),
        monitoring_day=np.zeros(n, np.int32), churn_day=np.full(n, NEVER, np.int32),
        decay_start=np.full(n, NEVER, np.int32), risk_flags=np.zeros((DAYS, n), np.uint8))
    base.update(arrays)
    return HiddenState(**base)


def at(day: int, n: int = 1) -> pd.Series:
    return pd.Series([START + pd.Timedelta(days=day)] * n)


def test_hidden_risk_changes_the_oracle_when_everything_observable_is_equal():
    state = hidden(2, latent_risk=np.array([0.5, 2.0]))
    low, high = churn_probability(state, ["c0", "c1"], at(100, 2), 30)
    # no decision known: about 30 days of hazard 0.0011 x risk, a share of which churn in time
    assert 0 < low < high < 1
    assert high / low == pytest.approx(4.0, rel=0.05)


def test_a_decay_under_way_is_determined():
    state = hidden(3, decay_start=np.array([90, 90, NEVER], np.int32),
                   churn_day=np.array([120, 140, NEVER], np.int32))
    inside, beyond, undecided = churn_probability(state, ["c0", "c1", "c2"], at(100, 3), 30)
    assert inside == 1.0 and beyond == 0.0
    assert 0 < undecided < 0.05


def test_a_decision_on_the_observation_day_is_not_known_yet():
    # decided at midnight of day 100 = t: the oracle must not see it
    state = hidden(2, decay_start=np.array([100, NEVER], np.int32),
                   churn_day=np.array([110, NEVER], np.int32))
    decided_at_t, never = churn_probability(state, ["c0", "c1"], at(100, 2), 30)
    assert decided_at_t == never < 0.05


def test_hazard_factors_follow_the_simulator():
    flags = np.zeros((DAYS, 4), np.uint8)
    flags[:, 1] = LOW_ADOPTION
    flags[:, 2] = NOT_MONITORING
    state = hidden(4, risk_flags=flags,
                   integration_day=np.array([NEVER, NEVER, NEVER, 10], np.int32))
    plain, low_adoption, not_monitoring, integrated = churn_probability(
        state, ["c0", "c1", "c2", "c3"], at(40, 4), 30)
    assert low_adoption / plain == pytest.approx(3.0, rel=0.05)  # tenure 40-70: early life
    assert not_monitoring / plain == pytest.approx(2.2, rel=0.05)
    assert integrated / plain == pytest.approx(0.35, rel=0.05)
    # after day 90 of tenure low adoption no longer counts
    late = churn_probability(state, ["c0", "c1"], at(120, 2), 30)
    assert late[1] == pytest.approx(late[0])


def test_rows_that_are_not_active_customers_are_refused():
    state = hidden(2, signup_day=np.array([0, 150], np.int32),
                   churn_day=np.array([50, NEVER], np.int32))
    with pytest.raises(ValueError, match="not an active customer"):
        churn_probability(state, ["c0"], at(60), 30)  # churned before t
    with pytest.raises(ValueError, match="not an active customer"):
        churn_probability(state, ["c1"], at(60), 30)  # not signed up yet
    with pytest.raises(ValueError, match="not in the simulation"):
        churn_probability(state, ["nobody"], at(60), 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        churn_probability(state, ["c0"], pd.Series([pd.Timestamp("2025-01-10")]), 30)


@pytest.fixture(scope="module")
def simulated():
    sim = simulate(SimulationConfig(customers=3000, days=365, seed=11, start=date(2025, 1, 1)))
    customers = sim.customers.to_pandas()
    end = sim.events.column("timestamp").to_pandas().max()
    rows = observation_rows(customers, customers.signup_at.min().floor("D"), end, 30, 7)
    return sim, rows


def test_the_oracle_is_calibrated_where_the_outcome_is_still_open(simulated):
    sim, rows = simulated
    p = oracle_for_rows(sim.hidden, rows, 30)
    y = rows.label.to_numpy()
    decided = (p == 0) | (p == 1)
    assert (y[decided] == p[decided]).all()  # a known decision's outcome is exact
    open_ = ~decided
    assert open_.sum() > 50_000 and y[open_].sum() > 300
    residual = pd.Series(y[open_] - p[open_])
    # rows of one customer overlap in their label windows: a customer-clustered standard error
    per_customer = residual.groupby(rows.customer_id.to_numpy()[open_]).sum()
    z = residual.sum() / np.sqrt((per_customer ** 2).sum())
    assert abs(z) < 3.5, (y[open_].mean(), p[open_].mean(), z)
    # and it ranks: the riskiest fifth churns several times as often as the safest fifth
    quintile = pd.qcut(p[open_], 5, labels=False)
    rates = pd.Series(y[open_]).groupby(quintile).mean()
    assert rates.iloc[-1] > 3 * rates.iloc[0]


def test_the_hidden_risk_carries_information_the_events_do_not(simulated):
    sim, rows = simulated
    p = oracle_for_rows(sim.hidden, rows, 30)
    blind = oracle_for_rows(dataclasses.replace(
        sim.hidden, latent_risk=np.ones_like(sim.hidden.latent_risk)), rows, 30)
    y = rows.label.to_numpy()
    open_ = (p > 0) & (p < 1)
    assert roc_auc_score(y[open_], p[open_]) > roc_auc_score(y[open_], blind[open_]) + 0.01


def test_the_onset_oracle_knows_the_onset_day_and_nothing_else():
    # equal onsets, different churn days, hidden risk, plans and risk flags: equal scores
    flags = np.zeros((DAYS, 3), np.uint8)
    flags[:, 1] = 3
    state = hidden(3, decay_start=np.array([90, 90, 90], np.int32),
                   churn_day=np.array([115, 150, 140], np.int32),
                   latent_risk=np.array([0.3, 3.0, 1.0]), plan_hazard=np.array([1.6, 0.45, 1.0]),
                   risk_flags=flags)
    scores = onset_probability(state, ["c0", "c1", "c2"], at(100, 3), 30)
    assert scores[0] == scores[1] == scores[2]
    # by hand: churn on day 90 + L, L in 21..63 (all after day 100); (100, 130] holds
    # the churn days 100..129, i.e. L in 21..39
    assert scores[0] == pytest.approx(19 / 43)


def test_the_onset_oracle_follows_the_mechanisms_delays():
    state = hidden(1, decay_start=np.array([90], np.int32), churn_day=np.array([200], np.int32))
    gradual = dataclasses.replace(state, behaviour=GRADUAL)
    # L in 14..120: churned_at after day 100 for L >= 10 (all 107), in (100, 130] for L 14..39
    assert onset_probability(gradual, ["c0"], at(100), 30)[0] == pytest.approx(26 / 107)
    # later in the decline: fewer lengths remain, more of them end within the window
    late = onset_probability(gradual, ["c0"], at(150), 30)
    # churn days 150..210 remain possible (L 60..120), 150..179 are in (150, 180] (L 60..89)
    assert late[0] == pytest.approx(30 / 61)


def test_the_onset_oracle_sees_no_onset_at_or_after_t():
    state = hidden(3, decay_start=np.array([100, 120, NEVER], np.int32),
                   churn_day=np.array([130, 150, NEVER], np.int32))
    assert onset_probability(state, ["c0", "c1", "c2"], at(100, 3), 30).tolist() == [0, 0, 0]
    # an hour into the onset day, the onset is seen
    hour = at(100) + pd.Timedelta(hours=1)
    assert onset_probability(state, ["c0"], hour, 30)[0] > 0


def test_the_onset_oracle_ranks_churners_but_below_the_full_oracle(simulated):
    sim, rows = simulated
    y = rows.label.to_numpy()
    onset = onset_for_rows(sim.hidden, rows, 30)
    full = oracle_for_rows(sim.hidden, rows, 30)
    assert 0.75 < roc_auc_score(y, onset) < roc_auc_score(y, full)
    began = onset > 0
    # where a decline began, its score is calibrated (customer-clustered z within 3.5)
    residual = pd.Series(y[began] - onset[began])
    per_customer = residual.groupby(rows.customer_id.to_numpy()[began]).sum()
    assert abs(residual.sum() / np.sqrt((per_customer ** 2).sum())) < 3.5


def test_a_late_onset_oracle_sees_a_decline_only_its_delay_after_the_onset():
    state = hidden(1, decay_start=np.array([90], np.int32), churn_day=np.array([200], np.int32))
    at_100 = onset_probability(state, ["c0"], at(100), 30)[0]
    assert onset_probability(state, ["c0"], at(100), 30, delay_days=9)[0] == at_100  # 90+9 < 100
    assert onset_probability(state, ["c0"], at(100), 30, delay_days=10)[0] == 0  # not yet seen
    # once seen, the score is the onset oracle's: the delay hides, it does not change
    assert onset_probability(state, ["c0"], at(120), 30, delay_days=10)[0] == pytest.approx(
        onset_probability(state, ["c0"], at(120), 30)[0])
    with pytest.raises(ValueError, match="delay_days"):
        onset_probability(state, ["c0"], at(100), 30, delay_days=-1)

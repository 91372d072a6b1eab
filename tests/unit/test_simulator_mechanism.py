"""The simulator's second churn mechanism (``mechanism="gradual"``): deterministic, the default
mechanism unchanged by it, and its decline, delays and weekly rhythm as documented."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from usage_features.cli import app
from usage_features.simulation import SimulationConfig, simulate, write_simulation
from usage_features.simulation.config import GRADUAL, Behaviour, mechanism_behaviour
from usage_features.simulation.simulator import _set_up

GRADUAL_SMALL = SimulationConfig(customers=200, days=120, seed=3, mechanism="gradual")
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def year():
    """A year of the gradual mechanism, its daily counts (customers x days) and population."""
    config = SimulationConfig(customers=1200, days=365, seed=5, mechanism="gradual")
    sim = simulate(config)
    events = sim.events.to_pandas()
    index = {c: i for i, c in enumerate(sim.hidden.customer_ids)}
    day = ((events.timestamp - pd.Timestamp(config.start, tz="UTC")) // DAY).to_numpy()
    counts = np.zeros((config.customers, config.days))
    np.add.at(counts, (events.customer_id.map(index).to_numpy(), day), 1)
    return sim, events, counts, _set_up(config)[4]


def digests(sim, directory) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in write_simulation(sim, directory)]


def test_the_same_seed_gives_the_same_bytes_and_another_mechanism_other_ones(tmp_path):
    first = digests(simulate(GRADUAL_SMALL), tmp_path / "a")
    assert digests(simulate(GRADUAL_SMALL), tmp_path / "b") == first
    default = SimulationConfig(customers=200, days=120, seed=3)
    assert digests(simulate(default), tmp_path / "c") != first


def test_naming_the_default_mechanism_changes_nothing(tmp_path):
    plain = SimulationConfig(customers=200, days=120, seed=3)
    named = SimulationConfig(customers=200, days=120, seed=3, mechanism="default")
    assert named == plain and named.behaviour == Behaviour()
    assert digests(simulate(named), tmp_path / "a") == digests(simulate(plain), tmp_path / "b")


def test_the_mechanisms_share_the_customers_fixed_traits():
    default = _set_up(SimulationConfig(customers=200, days=120, seed=3))[4]
    gradual = _set_up(GRADUAL_SMALL)[4]
    for trait in ("signup_day", "plan", "intensity", "latent_risk", "integration_day"):
        assert np.array_equal(getattr(default, trait), getattr(gradual, trait)), trait
    assert default.halving is None and gradual.halving is not None


@pytest.mark.parametrize("changes", [{"mechanism": "abrupt"},
                                     {"mechanism": "gradual", "behaviour": Behaviour(
                                         base_churn_hazard=0.002)}])
def test_an_unknown_or_contradicting_mechanism_is_refused(changes):
    with pytest.raises(ValueError, match="mechanism"):
        SimulationConfig(**changes)


def test_the_gradual_behaviour_is_the_documented_one():
    assert mechanism_behaviour("gradual") == GRADUAL
    assert (GRADUAL.mechanism, GRADUAL.decay_days, GRADUAL.halving_days,
            GRADUAL.sudden_churn_share) == ("gradual", (14, 120), (14, 56), 0.08)
    assert GRADUAL_SMALL.behaviour == GRADUAL and GRADUAL_SMALL.mechanism == "gradual"


def test_churn_comes_14_to_120_days_after_the_decision_to_leave(year):
    sim = year[0]
    hidden = sim.hidden
    decayed = hidden.decay_start < hidden.days
    delay = hidden.churn_day[decayed] - hidden.decay_start[decayed]
    assert delay.min() >= 14 and delay.max() <= 120
    assert delay.max() > 90  # longer than any default decay (21-63 days)
    truth = sim.truth.to_pandas().churn_mode.value_counts()
    share = truth["sudden"] / (truth["sudden"] + truth["decay"])
    assert 0.03 < share < 0.14  # 8 % of decisions are sudden


def test_usage_halves_about_every_halving_time_after_the_decision(year):
    sim, _, counts, population = year
    hidden = sim.hidden
    start, churn = hidden.decay_start, hidden.churn_day
    leavers = np.flatnonzero((start >= 28) & (start < hidden.days))
    halving = population.halving
    assert halving.min() >= 14 and halving.max() <= 56

    def ratio(times: float) -> float:
        """A week's events ``times`` halving times after the decision, summed over leavers,
        over the same leavers' events in the week two weeks before it."""
        after = before = 0.0
        for c in leavers:
            first = int(start[c] + times * halving[c])
            if first + 7 <= min(churn[c], hidden.days):
                after += counts[c, first:first + 7].sum()
                before += counts[c, start[c] - 14:start[c] - 7].sum()
        return after / before

    # Usage halves per halving time; advanced features fall faster still (as by default).
    assert 0.30 < ratio(1) < 0.55
    assert 0.10 < ratio(2) < 0.30


def test_each_customer_has_its_own_weekly_rhythm(year):
    events = year[1]
    by_day = events.groupby([events.customer_id, events.timestamp.dt.dayofweek]).size()
    busiest = by_day.unstack(fill_value=0).idxmax(axis=1)
    assert busiest.isin([5, 6]).mean() > 0.15  # weekends are the busiest days of many
    assert busiest.value_counts().min() > 0.05 * len(busiest)
    default = simulate(SimulationConfig(customers=300, days=120, seed=5)).events.to_pandas()
    by_day = default.groupby([default.customer_id, default.timestamp.dt.dayofweek]).size()
    assert by_day.unstack(fill_value=0).idxmax(axis=1).isin([5, 6]).mean() < 0.05


def test_the_command_writes_the_gradual_simulation(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "cli"), "--customers",
                                      "200", "--days", "120", "--seed", "3",
                                      "--mechanism", "gradual"])
    assert result.exit_code == 0, result.output
    expected = digests(simulate(GRADUAL_SMALL), tmp_path / "memory")
    written = [hashlib.sha256((tmp_path / "cli" / name).read_bytes()).hexdigest()
               for name in ("events.parquet", "customers.parquet")]
    assert written == expected

"""``simulate``: a config in, the events and customers tables out."""

from __future__ import annotations

from datetime import datetime, time, timezone

import numpy as np

from usage_features.simulation.config import Simulation, SimulationConfig
from usage_features.simulation.dirty import corrupt
from usage_features.simulation.dynamics import simulate_days
from usage_features.simulation.oracle import HiddenState
from usage_features.simulation.population import draw_population
from usage_features.simulation.tables import (
    customer_ids,
    customers_table,
    events_table,
    truth_table,
)


def simulate(config: SimulationConfig | None = None) -> Simulation:
    """Simulate ``config`` (default: :class:`SimulationConfig`'s defaults); see the package doc.

    Three independent random streams derive from the seed: behaviour, event ids and
    corruption. So a dirty run's clean rows are exactly the clean run's rows, and event ids
    never shift the behaviour.
    """
    config = config or SimulationConfig()
    behaviour_seed, id_seed, dirt_seed = np.random.SeedSequence(config.seed).spawn(3)
    rng = np.random.default_rng(behaviour_seed)
    start = datetime.combine(config.start, time(), tzinfo=timezone.utc)
    start_us = int(start.timestamp()) * 1_000_000
    population = draw_population(rng, config.customers, config.days, config.behaviour)
    outcome = simulate_days(rng, population, config.days, start_us, config.start.weekday(),
                            config.behaviour)
    ids = customer_ids(config.customers)
    events = events_table(np.random.default_rng(id_seed), outcome, ids)
    customers = customers_table(population, outcome, ids, start_us, config.days)
    truth = truth_table(population, outcome, ids, start_us, config.days)
    corruption = None
    if config.dirty_fraction > 0:
        batches = events.to_batches()
        del events  # so that each clean batch is freed once corrupted
        events, corruption = corrupt(np.random.default_rng(dirt_seed), batches,
                                     config.dirty_fraction)
    hidden = HiddenState.of(population, outcome, ids, start_us, config.days, config.behaviour)
    return Simulation(config=config, events=events, customers=customers, truth=truth,
                      corruption=corruption, hidden=hidden)

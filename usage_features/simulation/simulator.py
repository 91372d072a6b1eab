"""``simulate``: a config in, the events and customers tables out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

import numpy as np

from usage_features.schema import EVENT_SCHEMA
from usage_features.simulation.config import Simulation, SimulationConfig
from usage_features.simulation.dirty import corrupt
from usage_features.simulation.dynamics import DayByDay, simulate_days
from usage_features.simulation.oracle import HiddenState
from usage_features.simulation.population import draw_population
from usage_features.simulation.tables import (
    customer_ids,
    customers_table,
    event_batches,
    events_table,
    truth_table,
)
from usage_features.simulation.writer import write_event_batches, write_simulation, write_table


def _set_up(config: SimulationConfig):
    """What every run starts from: the behaviour stream, the id and corruption seeds, the
    first day's UTC midnight (microseconds) and the drawn population."""
    # A fourth stream for the gradual mechanism's traits: the first three are the same
    # whatever the mechanism (``spawn`` numbers its children).
    behaviour_seed, id_seed, dirt_seed, mechanism_seed = (
        np.random.SeedSequence(config.seed).spawn(4))
    rng = np.random.default_rng(behaviour_seed)
    start = datetime.combine(config.start, time(), tzinfo=UTC)
    start_us = int(start.timestamp()) * 1_000_000
    population = draw_population(rng, config.customers, config.days, config.behaviour,
                                 np.random.default_rng(mechanism_seed))
    return rng, id_seed, dirt_seed, start_us, population


def simulate(config: SimulationConfig | None = None) -> Simulation:
    """Simulate ``config`` (default: :class:`SimulationConfig`'s defaults); see the package doc.

    Three independent random streams derive from the seed: behaviour, event ids and
    corruption. So a dirty run's clean rows are exactly the clean run's rows, and event ids
    never shift the behaviour.
    """
    config = config or SimulationConfig()
    rng, id_seed, dirt_seed, start_us, population = _set_up(config)
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


@dataclass(frozen=True)
class WrittenSimulation:
    """What :func:`simulate_to_files` wrote: paths and counts."""

    events_path: Path
    customers_path: Path
    events: int
    customers: int
    churned: int


def simulate_to_files(config: SimulationConfig, out_dir) -> WrittenSimulation:
    """Simulate ``config`` straight into ``out_dir/events.parquet`` and
    ``out_dir/customers.parquet``, the same bytes as ``write_simulation(simulate(config))``.

    Clean output is written a day's events at a time (memory grows with customers, not
    events); dirty output (``dirty_fraction`` > 0) picks its corrupted rows among all of them,
    so it is simulated in memory first.
    """
    out = Path(out_dir)
    if config.dirty_fraction > 0:
        sim = simulate(config)
        events_path, customers_path = write_simulation(sim, out)
        return WrittenSimulation(events_path, customers_path, sim.events.num_rows,
                                 sim.customers.num_rows, _churned(sim.customers))
    rng, id_seed, _, start_us, population = _set_up(config)
    run = DayByDay(rng, population, config.days, start_us, config.start.weekday(),
                   config.behaviour)
    ids = customer_ids(config.customers)
    out.mkdir(parents=True, exist_ok=True)
    events_path, customers_path = out / "events.parquet", out / "customers.parquet"
    rows = write_event_batches(event_batches(np.random.default_rng(id_seed), run.days(), ids),
                               EVENT_SCHEMA, events_path)
    empty = np.empty(0, np.int32)
    customers = customers_table(population, run.outcome(empty, empty, empty, empty), ids,
                                start_us, config.days)
    write_table(customers, customers_path)
    return WrittenSimulation(events_path, customers_path, rows, customers.num_rows,
                             _churned(customers))


def _churned(customers) -> int:
    return customers.num_rows - customers.column("churned_at").null_count

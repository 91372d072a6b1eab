"""A SaaS usage simulator with known churn dynamics (placeholder docstring)."""

from usage_features.simulation.config import Behaviour, Simulation, SimulationConfig
from usage_features.simulation.dirty import CORRUPTIONS, DIRTY_EVENT_SCHEMA
from usage_features.simulation.simulator import simulate
from usage_features.simulation.writer import write_simulation

__all__ = ["CORRUPTIONS", "DIRTY_EVENT_SCHEMA", "Behaviour", "Simulation", "SimulationConfig",
           "simulate", "write_simulation"]

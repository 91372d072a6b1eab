"""A SaaS usage simulator with known churn dynamics (see :mod:`.model`)."""

from usage_features.synthetic.model import Simulation, SimulationConfig, simulate, write_simulation

__all__ = ["Simulation", "SimulationConfig", "simulate", "write_simulation"]

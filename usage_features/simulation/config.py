"""What to simulate (:class:`SimulationConfig`, :class:`Behaviour`) and what comes out."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from usage_features.simulation.oracle import HiddenState


@dataclass(frozen=True)
class Behaviour:
    """The knobs of the behaviour model; the defaults are calibrated (see the package docstring).

    Rates are per day. A hazard ratio multiplies the daily churn hazard while its condition holds.
    """

    #: Median events on a day a customer uses the product (before plan and seasonality).
    events_per_active_day: float = 6.0
    #: Spread (sigma of the log) of customers' activity levels.
    activity_sigma: float = 0.8
    #: Share of customers signing up in the first ``launch_cohort_days`` (the rest: uniformly).
    launch_cohort_share: float = 0.3
    launch_cohort_days: int = 14
    #: Daily churn hazard of a ``starter`` customer with no risk factor (plans scale it).
    base_churn_hazard: float = 0.0011
    #: Adoption below the domain's ``LOW_ADOPTION_THRESHOLD`` from day 14 to ``EARLY_LIFE_DAYS``.
    low_adoption_hazard_ratio: float = 3.0
    #: No recent ``monitoring_run`` (from day 14 of tenure).
    no_monitoring_hazard_ratio: float = 2.2
    #: Once the customer has connected an integration.
    integration_hazard_ratio: float = 0.35
    #: Spread (sigma of the log) of an unobserved per-customer risk factor.
    latent_risk_sigma: float = 0.5
    #: Share of churn decisions that take effect at once, without any usage decay.
    sudden_churn_share: float = 0.15
    #: Length range (days) of the usage decay between the decision to leave and ``churned_at``.
    decay_days: tuple[int, int] = (21, 63)
    #: Daily probability of starting a temporary dip in usage that recovers (no churn).
    dip_probability: float = 0.0015
    dip_days: tuple[int, int] = (21, 63)
    #: The churn mechanism: ``"default"`` (a decay of ``decay_days`` that follows
    #: ``(1 - progress) ** 1.5`` down to 5 % at ``churned_at``; a weekly rhythm common to all,
    #: by UTC weekday) or ``"gradual"`` (see :data:`GRADUAL`).
    mechanism: str = "default"
    #: ``"gradual"`` only: range (days) of a customer's own halving time of usage once it has
    #: decided to leave (log-uniform; usage halves every that many days, down to 5 %).
    halving_days: tuple[int, int] = (14, 56)
    #: ``"gradual"`` only: range of the amplitude of a customer's own weekly rhythm
    #: (``0.8 x (1 + a cos(2 pi (weekday - phase) / 7))``, its phase uniform over the week).
    own_week_amplitude: tuple[float, float] = (0.3, 0.9)


#: The churn mechanisms :class:`SimulationConfig` ``mechanism`` names.
MECHANISMS = ("default", "gradual")


def mechanism_behaviour(name: str) -> Behaviour:
    """The behaviour of the churn mechanism ``name`` (:data:`MECHANISMS`).

    ``"gradual"`` was fixed before any feature was designed for it and is never tuned to the
    features: usage halves every 14-56 days (each customer its own halving time) from the
    decision to leave, ``churned_at`` comes 14-120 days after it (uniform, independent of the
    halving time), 8 % churn at once, and each customer has its own weekly rhythm instead of
    the common UTC weekday one. The hazard is the default one.
    """
    if name not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {', '.join(MECHANISMS)}, got {name!r}")
    if name == "default":
        return Behaviour()
    return replace(Behaviour(), mechanism="gradual", decay_days=(14, 120),
                   sudden_churn_share=0.08)


#: The gradual mechanism (see :func:`mechanism_behaviour`).
GRADUAL = mechanism_behaviour("gradual")


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run; the same config always gives the same output, byte for byte.

    ``start`` is the first simulated UTC day (a fixed date, never "today"); ``days`` the number
    of days simulated; ``dirty_fraction`` the share of event rows corrupted (0 for clean output,
    see :mod:`usage_features.simulation.dirty`).
    """

    customers: int = 1000
    days: int = 365
    seed: int = 0
    start: date = date(2025, 1, 1)
    dirty_fraction: float = 0.0
    behaviour: Behaviour = field(default_factory=Behaviour)
    #: The churn mechanism (:data:`MECHANISMS`); ``None`` takes ``behaviour``'s. Naming one
    #: with the default ``behaviour`` gives that mechanism's behaviour.
    mechanism: str | None = None

    def __post_init__(self) -> None:
        if self.mechanism is not None:
            preset = mechanism_behaviour(self.mechanism)
            if self.behaviour == Behaviour():
                object.__setattr__(self, "behaviour", preset)
            elif self.behaviour.mechanism != self.mechanism:
                raise ValueError(f"mechanism {self.mechanism!r} but the behaviour's is "
                                 f"{self.behaviour.mechanism!r}")
        if self.behaviour.mechanism not in MECHANISMS:
            raise ValueError(f"mechanism must be one of {', '.join(MECHANISMS)}, got "
                             f"{self.behaviour.mechanism!r}")
        object.__setattr__(self, "mechanism", self.behaviour.mechanism)
        start = self.start
        if isinstance(start, str):
            start = date.fromisoformat(start)
        if isinstance(start, datetime) or not isinstance(start, date):
            raise ValueError(f"start must be a date (YYYY-MM-DD), got {self.start!r}")
        object.__setattr__(self, "start", start)
        for name in ("customers", "days", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.customers < 1 or self.days < 1:
            raise ValueError("customers and days must be at least 1")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if not 0.0 <= float(self.dirty_fraction) < 1.0:
            raise ValueError(f"dirty_fraction must be within [0, 1), got {self.dirty_fraction}")


@dataclass(frozen=True)
class Simulation:
    """A simulation's output.

    ``events``: ``EVENT_SCHEMA`` sorted by timestamp (or the dirty schema when
    ``config.dirty_fraction > 0``); ``customers``: ``CUSTOMER_SCHEMA`` sorted by customer_id.
    ``truth`` holds the hidden per-customer state that generated them (for notebooks and tests,
    never written by :func:`write_simulation`); ``corruption`` names, per event row, the kind of
    corruption applied (null for a clean row), or is ``None`` for clean output. ``hidden`` is
    the same hidden state as arrays, with the hazard's daily state, for the churn oracle
    (:mod:`usage_features.simulation.oracle`; never written either).
    """

    config: SimulationConfig
    events: pa.Table
    customers: pa.Table
    truth: pa.Table
    corruption: pa.Array | None = None
    hidden: HiddenState | None = None

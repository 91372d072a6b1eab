"""The customers' fixed traits, drawn once at the start of a simulation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usage_features.domain.value_objects import EventType
from usage_features.simulation.config import Behaviour

DAY_US = 86_400 * 1_000_000
#: A day index no simulation reaches ("never").
NEVER = np.iinfo(np.int32).max // 2

EVENT_TYPES = tuple(t.value for t in EventType)
TYPE_INDEX = {name: i for i, name in enumerate(EVENT_TYPES)}
LOGIN, DASHBOARD = TYPE_INDEX["login"], TYPE_INDEX["dashboard_view"]
MONITORING = TYPE_INDEX["monitoring_run"]
INTEGRATION = TYPE_INDEX["integration_connect"]
API = TYPE_INDEX["api_call"]

#: Average share of each event type in a customer's usage, in ``EVENT_TYPES`` order.
BASE_MIX = np.array([0.20, 0.26, 0.16, 0.04, 0.05, 0.01, 0.02, 0.26])
#: How concentrated customers' own mixes are around ``BASE_MIX`` (Dirichlet concentration).
MIX_CONCENTRATION = 12.0


@dataclass(frozen=True)
class Plan:
    """A plan's share of signups and its effect on activity, churn and feature uptake."""

    name: str
    share: float
    activity: float
    hazard: float
    monitoring: float
    integration: float
    api: float


PLANS = (
    Plan("free", 0.40, activity=0.6, hazard=1.6, monitoring=0.55, integration=0.12, api=0.15),
    Plan("starter", 0.30, activity=1.0, hazard=1.0, monitoring=0.75, integration=0.30, api=0.30),
    Plan("pro", 0.20, activity=1.5, hazard=0.7, monitoring=0.88, integration=0.50, api=0.60),
    Plan("enterprise", 0.10, activity=2.2, hazard=0.45, monitoring=0.95, integration=0.70,
         api=0.80),
)

#: Local-time hour-of-day profile of activity (business hours), normalised.
_HOURLY = np.array([0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.4, 0.8, 1.2, 1.5, 1.5, 1.4,
                    1.1, 1.4, 1.5, 1.4, 1.2, 0.9, 0.6, 0.5, 0.45, 0.4, 0.3, 0.2])
HOURLY = _HOURLY / _HOURLY.sum()
#: Customers' UTC offsets (hours) and how common each is.
TZ_OFFSETS = np.array([-8.0, -5.0, 0.0, 1.0, 5.5, 8.0])
TZ_SHARES = np.array([0.2, 0.3, 0.15, 0.2, 0.05, 0.1])


@dataclass(frozen=True)
class Population:
    """Per-customer traits, each an array over customers (in signup order)."""

    signup_day: np.ndarray  # int32, day index
    signup_tod: np.ndarray  # int64, microseconds into the signup day
    churn_tod: np.ndarray  # int64, time of day of churned_at, if it comes
    plan: np.ndarray  # int8, index into PLANS
    intensity: np.ndarray  # float64, events on an active day (before modifiers)
    p_active: np.ndarray  # float64, chance of using the product on a weekday
    mix: np.ndarray  # float64 (customers x event types), includes the api gate
    monitoring_day: np.ndarray  # int32, first day of monitoring_run use, NEVER if never
    integration_day: np.ndarray  # int32, day of the first integration_connect, NEVER if never
    tz_offset: np.ndarray  # float64, hours
    latent_risk: np.ndarray  # float64, unobserved churn hazard multiplier
    score_offset: np.ndarray  # float64, per-customer bias of the adoption score
    #: The gradual mechanism only (``None`` otherwise): float64 days over which usage halves
    #: once the customer has decided to leave, and float64 (customers x 7, Monday first) the
    #: customer's own weekly rhythm.
    halving: np.ndarray | None = None
    own_week: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.signup_day)


def _signups(rng: np.random.Generator, customers: int, days: int,
             behaviour: Behaviour) -> tuple[np.ndarray, np.ndarray]:
    cohort = rng.random(customers) < behaviour.launch_cohort_share
    cohort_days = max(1, min(behaviour.launch_cohort_days, days))
    day = np.where(cohort, rng.integers(0, cohort_days, customers),
                   rng.integers(0, days, customers))
    tod = rng.integers(0, DAY_US, customers)
    order = np.lexsort((tod, day))
    return day[order].astype(np.int32), tod[order].astype(np.int64)


def _adoption_day(rng: np.random.Generator, signup_day: np.ndarray, chance: np.ndarray,
                  mean_delay: float) -> np.ndarray:
    """Signup day plus a geometric delay for customers who adopt a feature; NEVER otherwise."""
    adopts = rng.random(len(signup_day)) < chance
    delay = rng.geometric(1.0 / mean_delay, len(signup_day)) - 1
    return np.where(adopts, signup_day + delay, NEVER).astype(np.int32)


def _mechanism_traits(rng: np.random.Generator, customers: int,
                      behaviour: Behaviour) -> dict[str, np.ndarray]:
    """The gradual mechanism's own traits (halving time, weekly rhythm), from their own
    stream, so the traits every mechanism shares are the same for a seed."""
    if behaviour.mechanism != "gradual":
        return {}
    low, high = behaviour.halving_days
    halving = np.exp(rng.uniform(np.log(low), np.log(high), customers))
    amplitude = rng.uniform(*behaviour.own_week_amplitude, customers)
    phase = rng.uniform(0.0, 7.0, customers)
    weekday = np.arange(7)
    own_week = 0.8 * (1.0 + amplitude[:, None]
                      * np.cos(2 * np.pi * (weekday[None, :] - phase[:, None]) / 7))
    return {"halving": halving, "own_week": own_week}


def draw_population(rng: np.random.Generator, customers: int, days: int,
                    behaviour: Behaviour, mechanism_rng: np.random.Generator | None = None
                    ) -> Population:
    """Every customer's fixed traits; draws in a fixed order, so a seed fixes them all
    (``mechanism_rng``: the stream of the gradual mechanism's own traits)."""
    signup_day, signup_tod = _signups(rng, customers, days, behaviour)
    churn_tod = rng.integers(0, DAY_US, customers).astype(np.int64)
    shares = np.array([p.share for p in PLANS])
    plan = rng.choice(len(PLANS), customers, p=shares / shares.sum()).astype(np.int8)

    def per_plan(attribute: str) -> np.ndarray:
        return np.array([getattr(p, attribute) for p in PLANS])[plan]

    intensity = (behaviour.events_per_active_day * per_plan("activity")
                 * rng.lognormal(0.0, behaviour.activity_sigma, customers))
    p_active = rng.beta(4.0, 2.0, customers)
    mix = rng.dirichlet(MIX_CONCENTRATION * BASE_MIX, customers)
    mix[:, API] *= (rng.random(customers) < per_plan("api")) * 3.0
    return Population(
        signup_day=signup_day,
        signup_tod=signup_tod,
        churn_tod=churn_tod,
        plan=plan,
        intensity=intensity,
        p_active=p_active,
        mix=mix,
        monitoring_day=_adoption_day(rng, signup_day, per_plan("monitoring"), 7.0),
        integration_day=_adoption_day(rng, signup_day, per_plan("integration"), 30.0),
        tz_offset=rng.choice(TZ_OFFSETS, customers, p=TZ_SHARES),
        latent_risk=rng.lognormal(0.0, behaviour.latent_risk_sigma, customers),
        score_offset=rng.normal(0.0, 0.04, customers),
        **_mechanism_traits(mechanism_rng or np.random.default_rng(0), customers, behaviour),
    )

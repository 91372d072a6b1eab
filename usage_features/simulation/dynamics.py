"""The day-by-day simulation: churn decisions, usage decay and dips, events, adoption scores.

One loop iteration per simulated day, vectorised over customers and events (never a Python
loop per event). Each day:

1. customers signing up that day become active;
2. the published adoption score (the nightly snapshot events carry) is computed from the
   state at the end of the previous day;
3. active customers may decide to leave (the hazard uses the score, monitoring use and
   integrations); a decision is sudden (``churned_at`` that day) or starts a usage decay that
   ends at ``churned_at``; any customer may start a temporary dip;
4. the day's events are drawn (who is active, how many of each type, at what time);
5. the per-type usage averages behind the score are updated with the day's counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usage_features.domain.value_objects import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD
from usage_features.simulation.config import Behaviour
from usage_features.simulation.population import (
    DASHBOARD,
    DAY_US,
    EVENT_TYPES,
    HOURLY,
    INTEGRATION,
    LOGIN,
    MONITORING,
    NEVER,
    PLANS,
    Population,
)

PENDING, ACTIVE, DECAYING, CHURNED = 0, 1, 2, 3
#: Activity factor on a UTC weekday (Monday first): weekends are quieter.
WEEKDAY_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.35, 0.3])
#: Grace period (days of tenure) before low adoption or no monitoring raise the hazard.
GRACE_DAYS = 14
#: Half-lives (days) of the per-type usage average (breadth) and the volume average (depth).
BREADTH_HALF_LIFE, DEPTH_HALF_LIFE = 30.0, 14.0
#: Daily count of a type at which it counts as about two-thirds "adopted" (breadth).
BREADTH_SCALE = 0.03
#: Daily events at which depth is about two-thirds of its maximum.
DEPTH_SCALE = 4.0
BREADTH_WEIGHT = 0.65
#: How much each event type contributes to breadth (advanced features weigh more).
TYPE_WEIGHTS = np.array([0.05, 0.10, 0.20, 0.15, 0.10, 0.20, 0.10, 0.10])
#: A customer is "not monitoring" while their monitoring_run average is below this.
MONITORING_FLOOR = 0.02
#: Remaining usage at the very end of a decay.
DECAY_FLOOR = 0.05


@dataclass
class Outcome:
    """The events (parallel arrays, sorted by timestamp) and each customer's fate."""

    customer: np.ndarray  # int32
    event_type: np.ndarray  # int8, index into EVENT_TYPES
    timestamp_us: np.ndarray  # int64, microseconds since the epoch (UTC)
    score: np.ndarray  # float64
    churn_day: np.ndarray  # int32, NEVER if the customer did not decide to leave
    decay_start: np.ndarray  # int32, NEVER for sudden churners and customers who stay
    dips: np.ndarray  # int32, how many temporary dips the customer had
    #: uint8 (days x customers): the hazard's state each day, before its tenure gates:
    #: bit 0 the published score is below the low-adoption threshold, bit 1 the customer's
    #: monitoring_run average is below ``MONITORING_FLOOR`` (hidden state, for the oracle).
    risk_flags: np.ndarray | None = None


class _State:
    """The mutable per-customer state of the loop."""

    def __init__(self, n: int) -> None:
        self.status = np.zeros(n, np.int8)
        self.churn_day = np.full(n, NEVER, np.int32)
        self.decay_start = np.full(n, NEVER, np.int32)
        self.decay_len = np.ones(n, np.int32)
        self.dip_start = np.full(n, NEVER, np.int32)
        self.dip_len = np.ones(n, np.int32)
        self.dip_depth = np.zeros(n)
        self.dips = np.zeros(n, np.int32)
        self.drift = np.zeros(n)
        self.breadth_avg = np.zeros((n, len(EVENT_TYPES)))
        self.depth_avg = np.zeros(n)


def simulate_days(rng: np.random.Generator, pop: Population, days: int, start_us: int,
                  first_weekday: int, behaviour: Behaviour) -> Outcome:
    """Run the loop over ``days`` days from ``start_us`` (a UTC midnight)."""
    run = DayByDay(rng, pop, days, start_us, first_weekday, behaviour)
    parts = list(run.days())
    customer, event_type, timestamp, scores = (
        np.concatenate([p[i] for p in parts]) if parts else np.empty(0) for i in range(4))
    return run.outcome(customer.astype(np.int32), event_type.astype(np.int8),
                       timestamp.astype(np.int64), scores.astype(np.float64))


class DayByDay:
    """The loop, one day at a time: :meth:`days` yields each day's events (customer, type,
    timestamp, score arrays, sorted by time) as it simulates it, so a caller can write them
    out without holding the whole period; the customers' fates are final once it is done."""

    def __init__(self, rng: np.random.Generator, pop: Population, days: int, start_us: int,
                 first_weekday: int, behaviour: Behaviour) -> None:
        self.rng, self.pop, self.n_days, self.start_us = rng, pop, days, start_us
        self.first_weekday, self.behaviour = first_weekday, behaviour
        self.state = _State(pop.size)
        #: per day and customer: 1 adoption below the threshold, 2 not monitoring (the hazard's
        #: state, for the oracle)
        self.risk_flags = np.zeros((days, pop.size), np.uint8)

    def days(self):
        rng, pop, state, behaviour = self.rng, self.pop, self.state, self.behaviour
        plan_hazard = np.array([p.hazard for p in PLANS])[pop.plan]
        for day in range(self.n_days):
            state.status[(pop.signup_day == day) & (state.status == PENDING)] = ACTIVE
            score = _published_score(rng, state, pop)
            self.risk_flags[day] = ((score < LOW_ADOPTION_THRESHOLD).astype(np.uint8)
                                    | (state.breadth_avg[:, MONITORING] < MONITORING_FLOOR)
                                    * np.uint8(2))
            _decide(rng, state, pop, day, score, plan_hazard, behaviour)
            multiplier, decay = _usage_multiplier(rng, state, pop, day, behaviour)
            weekday = (self.first_weekday + day) % 7
            rhythm = WEEKDAY_FACTOR[weekday] if pop.own_week is None else pop.own_week[:, weekday]
            counts, active = _daily_counts(rng, state, pop, day, multiplier, decay, rhythm)
            yield _events_of_day(rng, pop, state, day, self.start_us + day * DAY_US,
                                 counts, active, score)
            _update_usage(state, counts, active)
            state.status[state.churn_day == day] = CHURNED

    def outcome(self, customer: np.ndarray, event_type: np.ndarray, timestamp_us: np.ndarray,
                score: np.ndarray) -> Outcome:
        """The run's :class:`Outcome` (after :meth:`days` is exhausted) with these events."""
        state = self.state
        return Outcome(customer, event_type, timestamp_us, score, state.churn_day,
                       state.decay_start, state.dips, self.risk_flags)


def _published_score(rng: np.random.Generator, state: _State, pop: Population) -> np.ndarray:
    """The nightly adoption-score snapshot, in [0, 1], rounded to 4 decimals."""
    breadth = (1.0 - np.exp(-state.breadth_avg / BREADTH_SCALE)) @ TYPE_WEIGHTS
    depth = 1.0 - np.exp(-state.depth_avg / DEPTH_SCALE)
    raw = BREADTH_WEIGHT * breadth + (1.0 - BREADTH_WEIGHT) * depth
    noisy = raw + pop.score_offset * (raw > 0) + rng.normal(0.0, 0.02, pop.size)
    return np.round(np.clip(noisy, 0.0, 1.0), 4)


def _decide(rng: np.random.Generator, state: _State, pop: Population, day: int,
            score: np.ndarray, plan_hazard: np.ndarray, behaviour: Behaviour) -> None:
    """Churn decisions (sudden or a decay towards churned_at) and the start of dips."""
    tenure = day - pop.signup_day
    hazard = behaviour.base_churn_hazard * plan_hazard * pop.latent_risk
    early = (tenure >= GRACE_DAYS) & (tenure < EARLY_LIFE_DAYS)
    hazard = hazard * np.where(early & (score < LOW_ADOPTION_THRESHOLD),
                               behaviour.low_adoption_hazard_ratio, 1.0)
    not_monitoring = (tenure >= GRACE_DAYS) & (state.breadth_avg[:, MONITORING] < MONITORING_FLOOR)
    hazard = hazard * np.where(not_monitoring, behaviour.no_monitoring_hazard_ratio, 1.0)
    hazard = hazard * np.where(day > pop.integration_day, behaviour.integration_hazard_ratio, 1.0)

    decide = (state.status == ACTIVE) & (tenure > 0) & (rng.random(pop.size) < hazard)
    sudden = decide & (rng.random(pop.size) < behaviour.sudden_churn_share)
    low, high = behaviour.decay_days
    length = rng.integers(low, high + 1, pop.size).astype(np.int32)
    state.churn_day[sudden] = day
    gradual = decide & ~sudden
    state.decay_start[gradual] = day
    state.decay_len[gradual] = length[gradual]
    state.churn_day[gradual] = day + length[gradual]
    state.status[gradual] = DECAYING

    alive = (state.status == ACTIVE) | (state.status == DECAYING)
    free = (state.dip_start == NEVER) | (day >= state.dip_start + state.dip_len)
    low, high = behaviour.dip_days
    dip_len = rng.integers(low, high + 1, pop.size).astype(np.int32)
    depth = rng.uniform(0.5, 0.85, pop.size)
    starts = free & alive & (rng.random(pop.size) < behaviour.dip_probability)
    state.dip_start[starts] = day
    state.dip_len[starts] = dip_len[starts]
    state.dip_depth[starts] = depth[starts]
    state.dips[starts] += 1


def _usage_multiplier(rng: np.random.Generator, state: _State, pop: Population, day: int,
                      behaviour: Behaviour) -> tuple[np.ndarray, np.ndarray]:
    """(overall usage multiplier, decay part) for each customer today.

    The decay part of a customer who has decided to leave: by default
    ``(1 - progress) ** 1.5`` from 1 down to ``DECAY_FLOOR`` at ``churned_at``; in the gradual
    mechanism it halves every ``pop.halving`` days (down to ``DECAY_FLOOR``), whenever
    ``churned_at`` comes."""
    decaying = state.status == DECAYING
    if behaviour.mechanism == "gradual":
        elapsed = np.maximum(day - state.decay_start, 0) / pop.halving
        decay = np.where(decaying, np.maximum(DECAY_FLOOR, 0.5 ** elapsed), 1.0)
    else:
        progress = np.clip((day - state.decay_start) / state.decay_len, 0.0, 1.0)
        decay = np.where(decaying, DECAY_FLOOR + (1.0 - DECAY_FLOOR) * (1.0 - progress) ** 1.5,
                         1.0)
    in_dip = (state.dip_start <= day) & (day < state.dip_start + state.dip_len)
    phase = np.clip((day - state.dip_start) / state.dip_len, 0.0, 1.0)
    dip = np.where(in_dip, 1.0 - state.dip_depth * np.sin(np.pi * phase), 1.0)
    state.drift = 0.97 * state.drift + 0.06 * rng.standard_normal(len(state.drift))
    return decay * dip * np.exp(state.drift), decay


def _daily_counts(rng: np.random.Generator, state: _State, pop: Population, day: int,
                  multiplier: np.ndarray, decay: np.ndarray, weekday: float | np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Event counts (active customers x types) and the active customers' indices
    (``weekday``: today's weekly-rhythm factor, common or per customer)."""
    alive = (state.status == ACTIVE) | (state.status == DECAYING)
    root = np.sqrt(multiplier)
    uses = rng.random(pop.size) < pop.p_active * weekday * root
    connects = alive & (pop.integration_day == day)
    active = np.flatnonzero(alive & uses | connects)
    mix = pop.mix[active].copy()
    mix[:, MONITORING] *= day >= pop.monitoring_day[active]
    mix[:, INTEGRATION] *= day >= pop.integration_day[active]
    # A customer on the way out drops the advanced features first.
    advanced = np.ones(len(EVENT_TYPES), bool)
    advanced[[LOGIN, DASHBOARD]] = False
    mix[:, advanced] *= np.sqrt(decay[active])[:, None]
    lam = (pop.intensity[active] * root[active])[:, None] * mix
    lam *= uses[active][:, None]
    counts = rng.poisson(lam)
    counts[:, INTEGRATION] += connects[active]
    return counts, active


def _events_of_day(rng: np.random.Generator, pop: Population, state: _State, day: int,
                   day_start_us: int, counts: np.ndarray, active: np.ndarray,
                   score: np.ndarray) -> tuple[np.ndarray, ...]:
    """The day's events as (customer, type, timestamp, score) arrays, sorted by time."""
    width = counts.shape[1]
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    customer = active[cell // width]
    event_type = (cell % width).astype(np.int8)
    local_hour = rng.choice(24, len(cell), p=HOURLY) + rng.random(len(cell))
    utc_hour = np.mod(local_hour - pop.tz_offset[customer], 24.0)
    tod = np.minimum((utc_hour * (DAY_US / 24)).astype(np.int64), DAY_US - 1)
    # Keep the signup day's events after signup_at and the churn day's before churned_at.
    signs_up = pop.signup_day[customer] == day
    leaves = state.churn_day[customer] == day
    edge = signs_up | leaves
    if edge.any():
        low = np.where(signs_up[edge], pop.signup_tod[customer[edge]], 0)
        high = np.where(leaves[edge], pop.churn_tod[customer[edge]], DAY_US)
        squeezed = low + np.floor(tod[edge] / DAY_US * (high - low)).astype(np.int64)
        tod[edge] = np.clip(squeezed, low, high - 1)
    timestamp = day_start_us + tod
    order = np.argsort(timestamp, kind="stable")
    return customer[order], event_type[order], timestamp[order], score[customer[order]]


def _update_usage(state: _State, counts: np.ndarray, active: np.ndarray) -> None:
    """Fold the day's counts into the exponentially weighted usage averages."""
    today = np.zeros_like(state.breadth_avg)
    today[active] = counts
    keep = 0.5 ** (1.0 / BREADTH_HALF_LIFE)
    state.breadth_avg *= keep
    state.breadth_avg += (1.0 - keep) * today
    keep = 0.5 ** (1.0 / DEPTH_HALF_LIFE)
    state.depth_avg *= keep
    state.depth_avg += (1.0 - keep) * today.sum(axis=1)

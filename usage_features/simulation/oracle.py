"""The churn oracle: the probability of churn within a horizon given the simulator's hidden state.

The model sees only events; the simulator also knows why each customer behaves as it does.
For an observation row ``(customer, t)`` the oracle answers "will this customer churn within
``(t, t + horizon]``?" from the hidden state at ``t`` (never from features, never from a
decision made after ``t``):

* a decision to leave made before ``t`` (a decay under way, or a sudden churn later that day)
  fixes ``churned_at``: the answer is 1 if it falls in the window and 0 otherwise;
* otherwise the customer may still decide on each day ``d`` of the window, with the simulator's
  own daily hazard, ``base x plan x latent_risk x`` (x3 low adoption in days 14-89 of tenure,
  x2.2 no monitoring from day 14, x0.35 after the integration day). The tenure gates and the
  integration day are known in advance; the adoption and monitoring state is the one at ``t``
  (the published score and the monitoring_run average behind the last decision before ``t``),
  held for the window, except that a customer whose monitoring starts later (a hidden
  adoption day) is counted as monitoring from the day after it starts. A decision on day ``d``
  churns within the window with the simulator's odds: sudden (``sudden_churn_share``) at the
  customer's churn time of day ``d``, or after a decay of a uniform number of days in
  ``decay_days``. So ``P = sum_d S(d) h(d) c(d)``, ``S`` the chance of no decision before ``d``.

The oracle is the ceiling a model of these events could approach, not a reachable target:
``latent_risk`` and the decision day are never observable, only their consequences.

The **onset oracle** (:func:`onset_probability`) knows less, only what a perfect change
detector would: whether the customer's usage decline (a decay after a decision to leave) began
before ``t``, and on which day. Nothing of the hazard, the risk or the decline's length. A row
whose decline began on day ``s`` churns at ``s + L`` days and a time of day, ``L`` uniform in
``decay_days`` and the time of day uniform (both as the simulator draws them, unknown to the
oracle), so its score is ``P(churned_at in (t, t + horizon] | churned_at > t, s)``; a row with
no decline begun scores 0 (no information: every such row ties, below every row with one; a
row with a decline scores at least ``1 / len(decay_days range)`` whenever the horizon reaches the
shortest decay). Sudden churners never show a decline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from usage_features.domain.value_objects import EARLY_LIFE_DAYS
from usage_features.simulation.config import Behaviour
from usage_features.simulation.dynamics import GRACE_DAYS, Outcome
from usage_features.simulation.population import DAY_US, NEVER, PLANS, Population

#: Bits of ``HiddenState.risk_flags``.
LOW_ADOPTION, NOT_MONITORING = 1, 2


@dataclass(frozen=True)
class HiddenState:
    """Per-customer hidden state as arrays over customers (``customer_ids`` order).

    Days are indexes from ``start_us`` (a UTC midnight); ``NEVER`` means "not in the period".
    ``risk_flags`` (days x customers) holds each day's ``LOW_ADOPTION`` / ``NOT_MONITORING``
    state, as the simulator computed it before that day's decisions.
    """

    customer_ids: np.ndarray
    start_us: int
    days: int
    behaviour: Behaviour
    signup_day: np.ndarray
    signup_tod: np.ndarray
    churn_tod: np.ndarray
    plan_hazard: np.ndarray
    latent_risk: np.ndarray
    integration_day: np.ndarray
    monitoring_day: np.ndarray
    churn_day: np.ndarray
    decay_start: np.ndarray
    risk_flags: np.ndarray

    @classmethod
    def of(cls, pop: Population, outcome: Outcome, ids: pa.Array, start_us: int, days: int,
           behaviour: Behaviour) -> HiddenState:
        return cls(
            customer_ids=np.asarray(ids.to_pylist(), dtype=object), start_us=start_us,
            days=days, behaviour=behaviour, signup_day=pop.signup_day,
            signup_tod=pop.signup_tod, churn_tod=pop.churn_tod,
            plan_hazard=np.array([p.hazard for p in PLANS])[pop.plan],
            latent_risk=pop.latent_risk, integration_day=pop.integration_day,
            monitoring_day=pop.monitoring_day, churn_day=outcome.churn_day,
            decay_start=outcome.decay_start, risk_flags=outcome.risk_flags)

    def index_of(self, customer_ids) -> np.ndarray:
        """Positions of ``customer_ids``; a clear error for an id the simulation never had."""
        lookup = pd.Index(self.customer_ids)
        position = lookup.get_indexer(pd.Index(np.asarray(customer_ids, dtype=object)))
        if (position < 0).any():
            missing = np.asarray(customer_ids, dtype=object)[position < 0][:3].tolist()
            raise ValueError(f"customer(s) {missing} are not in the simulation")
        return position


def _microseconds(times) -> np.ndarray:
    stamps = pd.to_datetime(pd.Series(times))
    if stamps.dt.tz is None:
        raise ValueError("observation times must be timezone-aware (UTC)")
    return stamps.dt.tz_convert("UTC").astype("datetime64[us, UTC]").astype(np.int64).to_numpy()


def _rows(hidden: HiddenState, customer_ids, times, horizon_days: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """The rows' customer indexes and times (epoch microseconds); refuses a horizon that is
    not positive and a time outside the simulated period."""
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    c = hidden.index_of(customer_ids)
    t = _microseconds(times)
    if ((t < hidden.start_us) | (t >= hidden.start_us + hidden.days * DAY_US)).any():
        raise ValueError("an observation time is outside the simulated period")
    return c, t


def churn_probability(hidden: HiddenState, customer_ids, times, horizon_days: int = 30
                      ) -> np.ndarray:
    """The oracle's P(churned_at in (t, t + horizon]) for each row (customer_ids[i], times[i]).

    Every row must be an active customer at ``t`` (signed up at or before ``t``, not churned
    at ``t``: the rows of :func:`usage_features.training.labels.observation_rows`) and ``t``
    within the simulated period; anything else is refused.
    """
    c, t = _rows(hidden, customer_ids, times, horizon_days)
    start = hidden.start_us
    signed_up = start + hidden.signup_day[c].astype(np.int64) * DAY_US + hidden.signup_tod[c]
    churn_day = hidden.churn_day[c].astype(np.int64)
    churned_at = np.where(churn_day < NEVER, start + churn_day * DAY_US + hidden.churn_tod[c],
                          np.iinfo(np.int64).max)
    inactive = (signed_up > t) | (churned_at <= t)
    if inactive.any():
        raise ValueError(f"{int(inactive.sum())} row(s) are not an active customer at their "
                         f"time, e.g. {np.asarray(customer_ids, dtype=object)[inactive][0]!r}")
    end = t + horizon_days * DAY_US
    decided_day = np.where(hidden.decay_start[c] < NEVER, hidden.decay_start[c], churn_day)
    known = (decided_day < NEVER) & (start + decided_day.astype(np.int64) * DAY_US < t)
    probability = np.where(known, (churned_at <= end).astype(float), np.nan)
    open_ = ~known
    probability[open_] = _undecided(hidden, c[open_], t[open_], end[open_], horizon_days)
    return probability


def _undecided(hidden: HiddenState, c: np.ndarray, t: np.ndarray, end: np.ndarray,
               horizon_days: int) -> np.ndarray:
    """P(a decision on some day of the window churns within it), no decision known at t."""
    b = hidden.behaviour
    start = hidden.start_us
    offset = t - start
    first = -(-offset // DAY_US)  # the first day whose decisions are not yet made at t
    state_day = np.clip(offset // DAY_US, 0, hidden.days - 1)
    flags = hidden.risk_flags[state_day, c]
    low = (flags & LOW_ADOPTION) > 0
    not_monitoring = (flags & NOT_MONITORING) > 0
    base = b.base_churn_hazard * hidden.plan_hazard[c] * hidden.latent_risk[c]
    tod = hidden.churn_tod[c]
    lo, hi = b.decay_days
    survive = np.ones(len(c))
    probability = np.zeros(len(c))
    for k in range(horizon_days + 1):
        d = first + k
        tenure = d - hidden.signup_day[c]
        starts_later = (hidden.monitoring_day[c] > state_day) & (d > hidden.monitoring_day[c])
        hazard = base * np.where(
            low & (tenure >= GRACE_DAYS) & (tenure < EARLY_LIFE_DAYS),
            b.low_adoption_hazard_ratio, 1.0)
        hazard = hazard * np.where(not_monitoring & ~starts_later & (tenure >= GRACE_DAYS),
                                   b.no_monitoring_hazard_ratio, 1.0)
        hazard = hazard * np.where(d > hidden.integration_day[c], b.integration_hazard_ratio, 1.0)
        hazard = np.where((tenure > 0) & (d < hidden.days), np.minimum(hazard, 1.0), 0.0)
        sudden_at = start + d * DAY_US + tod
        sudden = ((sudden_at > t) & (sudden_at <= end)).astype(float)
        longest = (end - start - tod) // DAY_US - d  # decay lengths that end by `end`
        gradual = np.clip(longest - lo + 1, 0, hi - lo + 1) / (hi - lo + 1)
        churns = b.sudden_churn_share * sudden + (1.0 - b.sudden_churn_share) * gradual
        probability += survive * hazard * churns
        survive *= 1.0 - hazard
    return probability


def onset_probability(hidden: HiddenState, customer_ids, times, horizon_days: int = 30,
                      delay_days: int = 0) -> np.ndarray:
    """The onset oracle's score for each row (customer_ids[i], times[i]): P(churned_at in
    (t, t + horizon] | the decline's onset day, not churned at t) when the customer's decline
    began before ``t`` (its day's start before ``t``), 0 otherwise; see the module doc.
    Refuses a row outside the simulated period, as :func:`churn_probability` does.

    ``delay_days``: a detector that sees a decline only that many days after it began (a
    decline seen at ``t`` began before ``t - delay_days``): how the ceiling falls with a
    detector's delay."""
    if delay_days < 0:
        raise ValueError("delay_days must not be negative")
    c, t = _rows(hidden, customer_ids, times, horizon_days)
    start = hidden.start_us
    onset = hidden.decay_start[c].astype(np.int64)
    began = (onset < NEVER) & (start + (onset + delay_days) * DAY_US < t)
    score = np.zeros(len(c))
    if not began.any():
        return score
    lo, hi = hidden.behaviour.decay_days
    lengths = np.arange(lo, hi + 1, dtype=np.int64)
    tb, end = t[began][:, None], (t[began] + horizon_days * DAY_US)[:, None]
    day_start = start + (onset[began][:, None] + lengths[None, :]) * DAY_US
    day_end = day_start + DAY_US
    # the share of each candidate churn day (time of day uniform) after t, and in the window
    after = np.clip(day_end - np.maximum(tb, day_start), 0, DAY_US)
    inside = np.clip(np.minimum(end, day_end) - np.maximum(tb, day_start), 0, DAY_US)
    total = after.sum(axis=1)
    if (total == 0).any():
        raise ValueError("a row's decline ended in churn before its time: not an active "
                         "customer at its time")
    score[began] = inside.sum(axis=1) / total
    return score


def onset_for_rows(hidden: HiddenState, rows: pd.DataFrame, horizon_days: int = 30,
                   delay_days: int = 0) -> np.ndarray:
    """:func:`onset_probability` for ``customer_id, event_timestamp`` rows (labels' rows)."""
    return onset_probability(hidden, rows["customer_id"].to_numpy(dtype=object),
                             rows["event_timestamp"], horizon_days, delay_days)


def oracle_for_rows(hidden: HiddenState, rows: pd.DataFrame, horizon_days: int = 30
                    ) -> np.ndarray:
    """:func:`churn_probability` for ``customer_id, event_timestamp`` rows (labels' rows)."""
    return churn_probability(hidden, rows["customer_id"].to_numpy(dtype=object),
                             rows["event_timestamp"], horizon_days)


__all__ = ["HiddenState", "churn_probability", "onset_for_rows", "onset_probability",
           "oracle_for_rows"]

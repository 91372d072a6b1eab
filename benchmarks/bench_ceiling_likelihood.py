"""Benchmark instrument: a mechanism-aware likelihood change-point detector (issue 28).

    nice -n 10 python benchmarks/bench_ceiling_likelihood.py --seeds 0 1 2 --ablate

Not a feature and never shipped: it approximates the best any scorer of the *observable*
events could do, with the simulator's own generative model (its structure and parameters,
never its hidden state). For a row ``(customer, t)`` it uses only the customer's events with
``timestamp < t`` (whole UTC days before ``t``) and the customers table's signup time and
plan, and returns ``P(churned_at in (t, t + horizon] | those events)`` from a posterior over

* **none**: no decision to leave has been made (the customer may still decide in the window,
  with the daily hazard from what is observable: plan, the no-monitoring and low-adoption
  flags as the events show them, an integration seen);
* **decline(s, shape)**: a decision on day ``s`` started a decay (default: length ``L`` in
  ``decay_days`` and ``(1 - progress) ** 1.5``; gradual: halving time ``h``, ``churned_at``
  14-120 days after ``s`` independently of ``h``); the churn-window probability follows from
  ``(s, shape)`` and ``churned_at > t``;
* **dip(s, length, depth)**: a temporary dip (``1 - depth sin(pi phase)``) that recovers.

Per day the likelihood is the simulator's two-part model: the customer uses the product with
probability ``p x weekday x sqrt(m)`` and then emits Poisson basic (login, dashboard) events
at ``lambda_b sqrt(m)`` and advanced ones at ``lambda_a sqrt(m) sqrt(decay)`` (a dip scales all
types alike, a decay drops advanced ones first). ``p``, ``lambda_b`` and ``lambda_a`` are the
customer's own, profiled out (maximum likelihood per hypothesis) over the window. The
activity drift is not modelled: the log-likelihood ratios are tempered by ``tau`` instead.

Then the same validation rows as ``bench_model`` (train's ``validation_reference``) are scored
beside the onset oracle, the late onset oracles, the full oracle and the shipped model.
``_ceiling_prepare.py`` runs train (as ``bench_model.run_one`` does) and keeps those rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from usage_features.domain.value_objects import (  # noqa: E402
    EARLY_LIFE_DAYS,
    LOW_ADOPTION_THRESHOLD,
)
from usage_features.simulation.config import Behaviour, mechanism_behaviour  # noqa: E402
from usage_features.simulation.dynamics import (  # noqa: E402
    BREADTH_HALF_LIFE,
    DECAY_FLOOR,
    GRACE_DAYS,
    MONITORING_FLOOR,
    WEEKDAY_FACTOR,
)
from usage_features.simulation.population import (  # noqa: E402
    DASHBOARD,
    DAY_US,
    EVENT_TYPES,
    INTEGRATION,
    LOGIN,
    MONITORING,
    PLANS,
)

#: Days of history before the oldest decline hypothesis, for the customer's own baseline.
BASELINE_DAYS = 56
#: Dip hypotheses: lengths and depths (grid cells of equal prior weight).
DIP_LENGTHS = (21, 35, 49, 63)
DIP_DEPTHS = (0.59, 0.76)
#: Halving times (days) of the gradual mechanism's decline hypotheses (log-uniform grid).
HALVING_GRID = 6
#: Step (days) of the default mechanism's decay-length grid.
LENGTH_STEP = 2
#: Cap of the daily chance of using the product.
Q_MAX = 0.985
#: Mean of the unobserved risk factor (lognormal, sigma from Behaviour).
PLAN_HAZARD = {p.name: p.hazard for p in PLANS}


@dataclass(frozen=True)
class DailyCounts:
    """Per customer (rows, ``customer_ids`` order) and simulated day (columns): event counts.

    Built from the events table alone; ``first_weekday`` is the start day's UTC weekday.
    """

    customer_ids: pd.Index
    start_us: int
    first_weekday: int
    basic: np.ndarray  # int32 (customers x days): login + dashboard_view
    advanced: np.ndarray  # int32: every other type but integration_connect
    monitoring: np.ndarray  # int32: monitoring_run
    integration_day: np.ndarray  # int64: first day with an integration_connect (huge if none)
    adoption: np.ndarray  # float64 (customers x days): the day's published score, nan if none
    signup_day: np.ndarray  # int64: day of signup_at
    plan_hazard: np.ndarray  # float64


def daily_counts(events: pd.DataFrame, customers: pd.DataFrame, start_us: int, days: int,
                 first_weekday: int) -> DailyCounts:
    """Count ``events`` (customer_id, timestamp, event_type, feature_adoption_score) per
    customer and day; ``customers`` gives signup_at and plan (columns known at any t)."""
    ids = pd.Index(customers.customer_id.to_numpy(dtype=object))
    n = len(ids)
    c = ids.get_indexer(events.customer_id.to_numpy(dtype=object))
    ts = _epoch_us(events.timestamp)
    day = (ts - start_us) // DAY_US
    keep = (c >= 0) & (day >= 0) & (day < days)
    c, day = c[keep], day[keep]
    kind = pd.Index(EVENT_TYPES).get_indexer(events.event_type.to_numpy(dtype=object))[keep]
    cell = c * days + day

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(cell[mask], minlength=n * days).reshape(n, days).astype(np.int32)

    basic = count((kind == LOGIN) | (kind == DASHBOARD))
    advanced = count((kind >= 0) & (kind != LOGIN) & (kind != DASHBOARD)
                     & (kind != INTEGRATION))
    monitoring = count(kind == MONITORING)
    integration_day = np.full(n, np.iinfo(np.int64).max // 4, np.int64)
    connect = kind == INTEGRATION
    np.minimum.at(integration_day, c[connect], day[connect])
    adoption = np.full(n * days, np.nan)
    score = events.feature_adoption_score.to_numpy(dtype=float)[keep]
    adoption[cell] = score  # the same nightly snapshot on every event of a customer's day
    signup_day = (_epoch_us(customers.signup_at) - start_us) // DAY_US
    plan_hazard = customers.plan.map(PLAN_HAZARD).fillna(1.0).to_numpy(dtype=float)
    return DailyCounts(ids, start_us, first_weekday, basic, advanced, monitoring,
                       integration_day, adoption.reshape(n, days), signup_day, plan_hazard)


def _epoch_us(times) -> np.ndarray:
    stamps = pd.to_datetime(pd.Series(times))
    if stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize("UTC")
    return stamps.dt.tz_convert("UTC").astype("datetime64[us, UTC]").astype(np.int64).to_numpy()


@dataclass(frozen=True)
class Hypotheses:
    """Templates over the window's days (oldest first, the day before ``t`` last)."""

    multiplier: np.ndarray  # (H, W): overall usage multiplier m
    decay: np.ndarray  # (H, W): the decay part g (advanced types scale by sqrt(g) more)
    onset_ago: np.ndarray  # (H,): t's day minus the hypothesis' start day (0 for none)
    kind: np.ndarray  # (H,): 0 none, 1 decline, 2 dip
    weight: np.ndarray  # (H,): prior weight within its kind and start day
    churn_share: np.ndarray  # (H,): P(churn in the window | hypothesis, not churned at t)
    survive: np.ndarray  # (H,): P(churned_at after t's day | the hypothesis' start, shape)


def hypotheses(behaviour: Behaviour, horizon_days: int) -> Hypotheses:
    """Every hypothesis of ``behaviour``'s mechanism (the window's length follows from it)."""
    gradual = behaviour.mechanism == "gradual"
    lo, hi = behaviour.decay_days
    onsets = hi  # a decline older than the longest delay has churned by t
    width = onsets + BASELINE_DAYS
    lag = np.arange(width)[None, :] - (width - np.arange(1, onsets + 1))[:, None]  # (J, W)
    j = np.arange(1, onsets + 1)
    mult, dec, ago, kind, weight, share, survive = [np.ones((1, width))], [np.ones((1, width))], \
        [np.zeros(1)], [np.zeros(1)], [np.ones(1)], [np.zeros(1)], [np.ones(1)]
    if not gradual:
        lengths = np.arange(lo, hi + 1, LENGTH_STEP)
        for length in lengths:
            ok = j <= length  # churned_at on day s + L, after t's day start
            progress = np.clip(lag[ok] / length, 0.0, 1.0)
            g = np.where(lag[ok] >= 0, DECAY_FLOOR + (1 - DECAY_FLOOR) * (1 - progress) ** 1.5,
                         1.0)
            mult.append(g)
            dec.append(g)
            ago.append(j[ok])
            kind.append(np.ones(ok.sum()))
            cells = min(LENGTH_STEP, hi - length + 1)
            weight.append(np.full(ok.sum(), cells / (hi - lo + 1)))
            share.append((length - j[ok] < horizon_days).astype(float))
            survive.append(np.ones(ok.sum()))  # folded into weight: L >= j by construction
    else:
        low, high = behaviour.halving_days
        grid = np.exp(np.linspace(np.log(low), np.log(high), 2 * HALVING_GRID + 1)[1::2])
        delays = np.arange(lo, hi + 1)
        later = np.maximum(j, lo)
        alive = (hi - later + 1) / (hi - lo + 1)  # churned_at not before t's day
        inside = np.array([((delays >= a) & (delays < b + horizon_days)).sum()
                           for a, b in zip(later, j)]) / (hi - later + 1)
        for halving in grid:
            g = np.where(lag >= 0, np.maximum(DECAY_FLOOR, 0.5 ** (np.maximum(lag, 0)
                                                                    / halving)), 1.0)
            mult.append(g)
            dec.append(g)
            ago.append(j)
            kind.append(np.ones(len(j)))
            weight.append(np.full(len(j), 1.0 / HALVING_GRID))
            share.append(inside)
            survive.append(alive)
    dip_j = np.arange(1, behaviour.dip_days[1] + 1)
    dip_lag = lag[:len(dip_j)]
    for length in DIP_LENGTHS:
        for depth in DIP_DEPTHS:
            inside_dip = (dip_lag >= 0) & (dip_lag < length)
            m = np.where(inside_dip, 1 - depth * np.sin(np.pi * np.clip(dip_lag / length, 0, 1)),
                         1.0)
            mult.append(m)
            dec.append(np.ones_like(m))
            ago.append(dip_j)
            kind.append(np.full(len(dip_j), 2.0))
            weight.append(np.full(len(dip_j), 1.0 / (len(DIP_LENGTHS) * len(DIP_DEPTHS))))
            share.append(np.zeros(len(dip_j)))
            survive.append(np.ones(len(dip_j)))
    return Hypotheses(np.vstack(mult), np.vstack(dec), np.concatenate(ago).astype(np.int64),
                      np.concatenate(kind).astype(np.int8), np.concatenate(weight),
                      np.concatenate(share), np.concatenate(survive))


def _weekday_factors(counts: DailyCounts, c: np.ndarray, day: np.ndarray, behaviour: Behaviour,
                     width: int) -> np.ndarray:
    """(rows, W) weekday factor of each window day: the common one by default; in the gradual
    mechanism each customer's own, estimated from its active days before t (shrunk to flat)."""
    weekdays = (counts.first_weekday + day[:, None] - width + np.arange(width)[None, :]) % 7
    if behaviour.mechanism != "gradual":
        return WEEKDAY_FACTOR[weekdays]
    active = (counts.basic + counts.advanced) > 0
    days = active.shape[1]
    wd = (counts.first_weekday + np.arange(days)) % 7
    out = np.empty((len(c), 7))
    for k in range(7):
        on = np.where(wd == k, 1, 0)
        cum_active = np.concatenate([np.zeros((active.shape[0], 1)),
                                     np.cumsum(active * on, axis=1)], axis=1)
        cum_days = np.concatenate([[0], np.cumsum(on)])
        first = np.clip(counts.signup_day[c] + 1, 0, days)
        seen = np.clip(day, 0, days)
        a = cum_active[c, seen] - cum_active[c, np.minimum(first, seen)]
        n = cum_days[seen] - cum_days[np.minimum(first, seen)]
        out[:, k] = (a + 2.0) / (n + 2.0 / 0.6)  # prior: 2 active of 3.3 days
    out /= out.mean(axis=1, keepdims=True)
    return np.take_along_axis(out, weekdays, axis=1)


def _daily_hazard(counts: DailyCounts, c: np.ndarray, day: np.ndarray,
                  behaviour: Behaviour) -> np.ndarray:
    """The daily decision hazard from what the events before t show (the unobserved risk at
    its mean): plan, low adoption (days 14-89), no monitoring (from day 14), integration."""
    days = counts.basic.shape[1]
    keep = 0.5 ** (1.0 / BREADTH_HALF_LIFE)
    # the monitoring_run average the simulator keeps, after each day's counts
    last = np.clip(day - 1, 0, days - 1)
    weights = keep ** np.arange(days)[::-1]
    avg = np.zeros(len(c))
    for i in range(len(c)):  # one dot product per row
        upto = last[i] + 1
        if day[i] <= 0:
            continue
        avg[i] = (1 - keep) * counts.monitoring[c[i], :upto] @ weights[days - upto:]
    adoption = pd.DataFrame(counts.adoption).ffill(axis=1).to_numpy()
    score = np.where(day > 0, adoption[c, last], np.nan)
    tenure = day - counts.signup_day[c]
    hazard = (behaviour.base_churn_hazard * counts.plan_hazard[c]
              * np.exp(behaviour.latent_risk_sigma ** 2 / 2))
    early = (tenure >= GRACE_DAYS) & (tenure < EARLY_LIFE_DAYS)
    hazard *= np.where(early & (np.nan_to_num(score, nan=0.0) < LOW_ADOPTION_THRESHOLD),
                       behaviour.low_adoption_hazard_ratio, 1.0)
    hazard *= np.where((tenure >= GRACE_DAYS) & (avg < MONITORING_FLOOR),
                       behaviour.no_monitoring_hazard_ratio, 1.0)
    hazard *= np.where(counts.integration_day[c] < day, behaviour.integration_hazard_ratio, 1.0)
    return hazard


def _new_decision_share(behaviour: Behaviour, horizon_days: int) -> float:
    """Sum over the window's days of P(a decision that day churns within the window)."""
    lo, hi = behaviour.decay_days
    total = 0.0
    for k in range(horizon_days):
        short = np.clip(horizon_days - 1 - k - lo + 1, 0, hi - lo + 1) / (hi - lo + 1)
        total += behaviour.sudden_churn_share + (1 - behaviour.sudden_churn_share) * short
    return total


@dataclass(frozen=True)
class Evidence:
    """Per row: each hypothesis' profile log-likelihood and what the prior needs."""

    hyp: Hypotheses
    loglik: np.ndarray  # (rows, H)
    hazard: np.ndarray  # (rows,)
    possible: np.ndarray  # (rows, H) bool: the hypothesis' onset is after signup


def evidence(counts: DailyCounts, customer_ids, times, behaviour: Behaviour,
             horizon_days: int = 30, channels: bool = True, activity: bool = True,
             chunk: int = 16, hidden_drift: np.ndarray | None = None) -> Evidence:
    """The profile log-likelihood of every hypothesis for each row, from days before t only.

    ``channels=False`` pools advanced and basic events (no information from the share of
    advanced events); ``activity=False`` drops the days-used part (counts on used days only).
    ``hidden_drift`` (customers x days, the simulator's hidden log activity drift) is a
    diagnostic only, never observable: how much a perfect model of the drift could add.
    """
    hyp = hypotheses(behaviour, horizon_days)
    width = hyp.multiplier.shape[1]
    c = counts.customer_ids.get_indexer(pd.Index(np.asarray(customer_ids, dtype=object)))
    if (c < 0).any():
        raise ValueError("unknown customer id")
    day = (_epoch_us(times) - counts.start_us) // DAY_US  # days before `day` ended by t
    days = counts.basic.shape[1]
    # window arrays (rows, W): days day-W .. day-1, valid from the day after signup
    grid = day[:, None] - width + np.arange(width)[None, :]
    valid = (grid >= counts.signup_day[c][:, None] + 1) & (grid >= 0) & (grid < days)
    safe = np.clip(grid, 0, days - 1)
    x = np.where(valid, counts.basic[c[:, None], safe], 0).astype(np.float64)
    y = np.where(valid, counts.advanced[c[:, None], safe], 0).astype(np.float64)
    if not channels:
        x, y = x + y, np.zeros_like(y)
    a = ((x + y) > 0).astype(np.float64)
    w = _weekday_factors(counts, c, day, behaviour, width) * valid
    drift = (np.exp(0.5 * hidden_drift[c[:, None], safe]) if hidden_drift is not None
             else np.ones_like(w))
    w = w * drift

    root = np.sqrt(hyp.multiplier)
    root_adv = root * np.sqrt(hyp.decay) if channels else root
    va = valid * a
    big_x, big_y, big_a = (va * x).sum(1), (va * y).sum(1), va.sum(1)
    vd = va * drift

    def xlogx(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.where(num > 0, num * np.log(np.maximum(num, 1e-300) / np.maximum(den, 1e-300)),
                        0.0)

    loglik = (xlogx(big_x[:, None], vd @ root.T) + (va * x) @ np.log(root).T
              + xlogx(big_y[:, None], vd @ root_adv.T) + (va * y) @ np.log(root_adv).T)
    if activity:
        p_hat = (big_a[:, None] / np.maximum(w @ root.T, 1e-12)).astype(np.float32)
        # per day: log q if used, log(1 - q) if not, 0 outside the window
        sign = np.where(valid, np.where(a > 0, 1.0, -1.0), 0.0).astype(np.float32)
        offset = np.where(valid & (a == 0), 1.0, 0.0).astype(np.float32)
        offset[~valid] = 1.0
        w32, root32 = w.astype(np.float32), root.astype(np.float32)
        for lo in range(0, len(c), chunk):
            hi = min(lo + chunk, len(c))
            q = p_hat[lo:hi, :, None] * w32[lo:hi, None, :]
            q *= root32[None]
            np.clip(q, 1e-6, Q_MAX, out=q)
            q *= sign[lo:hi, None, :]
            q += offset[lo:hi, None, :]
            np.log(q, out=q)
            loglik[lo:hi] += q.sum(axis=2)
    onset_day = day[:, None] - hyp.onset_ago[None, :]
    possible = (hyp.kind[None, :] == 0) | (onset_day >= counts.signup_day[c][:, None] + 1)
    return Evidence(hyp, loglik, _daily_hazard(counts, c, day, behaviour), possible)


#: The activity drift: daily AR(1) of the log level (as the simulator draws it).
DRIFT_PHI, DRIFT_SD = 0.97, 0.06


def weekly_evidence(counts: DailyCounts, customer_ids, times, behaviour: Behaviour,
                    horizon_days: int = 30, chunk: int = 64) -> Evidence:
    """The same hypotheses scored with the activity drift modelled: weekly log counts of the
    basic and the advanced events (weeks ending at t's day, so every weekday once) are
    Gaussian around ``level + log(the week's mean multiplier)`` (advanced: times
    ``sqrt(decay)``) plus the drift, common to both, with the simulator's AR(1) covariance
    (weekly: ``phi ** 7``), plus counting noise (a compound Bernoulli-Poisson's relative
    variance, from the customer's own days-used share and events per used day). The two
    levels are profiled out (generalised least squares)."""
    hyp = hypotheses(behaviour, horizon_days)
    width = hyp.multiplier.shape[1]
    weeks = width // 7
    c = counts.customer_ids.get_indexer(pd.Index(np.asarray(customer_ids, dtype=object)))
    if (c < 0).any():
        raise ValueError("unknown customer id")
    day = (_epoch_us(times) - counts.start_us) // DAY_US
    days = counts.basic.shape[1]
    grid = day[:, None] - 7 * weeks + np.arange(7 * weeks)[None, :]
    valid = (grid >= counts.signup_day[c][:, None] + 1) & (grid >= 0) & (grid < days)
    safe = np.clip(grid, 0, days - 1)
    x = np.where(valid, counts.basic[c[:, None], safe], 0).astype(np.float64)
    y = np.where(valid, counts.advanced[c[:, None], safe], 0).astype(np.float64)
    used = valid & ((x + y) > 0)
    share_used = (used.sum(1) + 1.0) / (valid.sum(1) + 2.0)
    per_day_b = (x.sum(1) + 0.5) / (used.sum(1) + 1.0)
    per_day_a = (y.sum(1) + 0.5) / (used.sum(1) + 1.0)
    xk = x.reshape(len(c), weeks, 7).sum(2)
    yk = y.reshape(len(c), weeks, 7).sum(2)
    full = valid.reshape(len(c), weeks, 7).all(2)
    z = np.concatenate([np.log(xk + 0.5), np.log(yk + 0.5)], axis=1)
    over_b = 1.0 + per_day_b * (1.0 - share_used)
    over_a = 1.0 + per_day_a * (1.0 - share_used)
    noise = np.concatenate([over_b[:, None] / (xk + 1.0), over_a[:, None] / (yk + 1.0)], axis=1)
    noise = np.where(np.concatenate([full, full], axis=1), noise, 1e4)
    lag = np.abs(np.arange(weeks)[:, None] - np.arange(weeks)[None, :])
    drift = DRIFT_SD ** 2 / (1 - DRIFT_PHI ** 2) * DRIFT_PHI ** (7 * lag)
    cov = np.tile(drift, (2, 2))[None] + noise[:, :, None] * np.eye(2 * weeks)[None]
    design = np.zeros((2 * weeks, 2))
    design[:weeks, 0] = 1.0
    design[weeks:, 1] = 1.0
    m = hyp.multiplier[:, -7 * weeks:].reshape(len(hyp.kind), weeks, 7)
    g = hyp.decay[:, -7 * weeks:].reshape(len(hyp.kind), weeks, 7)
    f = np.concatenate([np.log(m.mean(2)), np.log((m * np.sqrt(g)).mean(2))], axis=1)
    loglik = np.empty((len(c), len(hyp.kind)))
    for lo in range(0, len(c), chunk):
        hi = min(lo + chunk, len(c))
        chol = np.linalg.cholesky(cov[lo:hi])
        white_d = np.linalg.solve(chol, np.broadcast_to(design, (hi - lo, *design.shape)))
        white = np.linalg.inv(chol)  # (n, 2K, 2K)
        q, _ = np.linalg.qr(white_d)  # orthonormal basis of the levels' span
        proj = white - q @ (np.swapaxes(q, 1, 2) @ white)  # residual maker after the levels
        rz = np.einsum("nij,nj->ni", proj, z[lo:hi])
        rf = np.einsum("nij,hj->nhi", proj, f)
        loglik[lo:hi] = -0.5 * ((rz[:, None, :] - rf) ** 2).sum(2)
    onset_day = day[:, None] - hyp.onset_ago[None, :]
    possible = (hyp.kind[None, :] == 0) | (onset_day >= counts.signup_day[c][:, None] + 1)
    return Evidence(hyp, loglik, _daily_hazard(counts, c, day, behaviour), possible)


def posterior_scores(ev: Evidence, behaviour: Behaviour, horizon_days: int = 30,
                     tau: float = 1.0, dips: bool = True, return_parts: bool = False):
    """P(churned_at in (t, t + horizon] | the events before t) from the rows' evidence
    (log-likelihood ratios tempered by ``tau``; ``dips=False`` leaves out dip hypotheses)."""
    hyp = ev.hyp
    llr = ev.loglik - ev.loglik[:, :1]
    prior = np.where(hyp.kind == 1, (1 - behaviour.sudden_churn_share) * hyp.survive,
                     np.where(hyp.kind == 2, behaviour.dip_probability, 1.0)) * hyp.weight
    log_prior = np.log(np.maximum(prior, 1e-300))[None, :] + np.where(
        hyp.kind[None, :] == 1, np.log(np.maximum(ev.hazard, 1e-300))[:, None], 0.0)
    keep = ev.possible & ((hyp.kind != 2) | dips)[None, :]
    logpost = np.where(keep, log_prior + tau * llr, -np.inf)
    logpost -= logpost.max(axis=1, keepdims=True)
    post = np.exp(logpost)
    post /= post.sum(axis=1, keepdims=True)
    declined = (post * (hyp.kind == 1)).sum(1)
    fresh = ev.hazard * _new_decision_share(behaviour, horizon_days)
    score = post @ hyp.churn_share + (1 - declined) * fresh
    if return_parts:
        return score, {"p_decline": declined, "post": post}
    return score


def detector_scores(counts: DailyCounts, customer_ids, times, behaviour: Behaviour,
                    horizon_days: int = 30, tau: float = 1.0) -> np.ndarray:
    """P(churned_at in (t, t + horizon] | the customer's events before t) for each row."""
    ev = evidence(counts, customer_ids, times, behaviour, horizon_days)
    return posterior_scores(ev, behaviour, horizon_days, tau)


def simulate_with_drift(config):
    """``simulate(config)`` and, for the diagnostics only, hidden daily arrays (customers x
    days) the run drew, recorded as the loop runs (the run is unchanged): ``drift`` the log
    activity drift, ``nuisance`` the log of everything but the decay (drift and dips)."""
    from usage_features.simulation import dynamics, simulate

    drift, nuisance = [], []
    original = dynamics._usage_multiplier

    def recording(rng, state, pop, day, behaviour):
        multiplier, decay = original(rng, state, pop, day, behaviour)
        drift.append(state.drift.copy())
        nuisance.append(np.log(multiplier / decay))
        return multiplier, decay

    dynamics._usage_multiplier = recording
    try:
        sim = simulate(config)
    finally:
        dynamics._usage_multiplier = original
    return sim, {"drift": np.array(drift).T, "nuisance": np.array(nuisance).T}


def score_run(customers: int, seed: int, mechanism: str, days: int, cache: Path,
              taus: list[float], ablate: bool = False) -> dict:
    """Score train's validation rows (cached by _ceiling_prepare) for one seed."""
    from bench_model import _labels
    from sklearn.metrics import average_precision_score, roc_auc_score

    from usage_features.simulation import SimulationConfig, simulate
    from usage_features.simulation.oracle import onset_for_rows, oracle_for_rows

    clock = time.perf_counter()
    stem = cache / f"{mechanism}_{customers}_{seed}"
    if not stem.with_suffix(".parquet").exists():
        subprocess.run([sys.executable, str(Path(__file__).with_name("_ceiling_prepare.py")),
                        "--customers", str(customers), "--seed", str(seed), "--days",
                        str(days), "--mechanism", mechanism, "--out", str(cache)], check=True)
    reference = pd.read_parquet(stem.with_suffix(".parquet"))
    meta = json.loads(stem.with_suffix(".json").read_text())
    horizon = meta["horizon_days"]
    config = SimulationConfig(customers=customers, days=days, seed=seed, mechanism=mechanism)
    sim = simulate(config)
    table = sim.customers.to_pandas()
    y = _labels(table, reference, horizon)
    if int(y.sum()) != meta["validation_positives"]:
        raise RuntimeError("the validation rows' labels differ from train's")
    start_us = int(pd.Timestamp(config.start, tz="UTC").value // 1000)
    # only what a scorer may see: the events and the customers' signup time and plan
    counts = daily_counts(sim.events.select(["customer_id", "timestamp", "event_type",
                                             "feature_adoption_score"]).to_pandas(),
                          table[["customer_id", "signup_at", "plan"]], start_us, days,
                          config.start.weekday())
    behaviour = mechanism_behaviour(mechanism)

    def both(p: np.ndarray) -> dict:
        # as evaluate.metrics computes them (its Brier score refuses a sum of posterior
        # shares that rounds to 1 + 2e-16)
        return {"roc_auc": float(roc_auc_score(y, p)),
                "pr_auc": float(average_precision_score(y, p))}

    scores = {"oracle": both(oracle_for_rows(sim.hidden, reference, horizon)),
              "onset oracle": both(onset_for_rows(sim.hidden, reference, horizon))}
    for delay in (7, 14, 28):
        scores[f"onset oracle, {delay} days late"] = both(
            onset_for_rows(sim.hidden, reference, horizon, delay))
    scores["shipped"] = both(reference.churn_probability.to_numpy())
    seconds = {}
    variants = {"": {}, ", pooled types": {"channels": False},
                ", no days-used part": {"activity": False}} if ablate else {"": {}}
    for suffix, options in variants.items():
        start = time.perf_counter()
        ev = evidence(counts, reference.customer_id, reference.event_timestamp, behaviour,
                      horizon, **options)
        seconds["evidence" + suffix] = round(time.perf_counter() - start, 1)
        for tau in taus if not suffix else [1.0]:
            p, parts = posterior_scores(ev, behaviour, horizon, tau, return_parts=True)
            scores[f"likelihood detector, tau {tau}{suffix}"] = both(p)
            if not suffix and tau == 1.0:
                scores["likelihood detector, tau 1.0, P(decline begun) alone"] = both(
                    parts["p_decline"])
        if not suffix and ablate:
            scores["likelihood detector, tau 1.0, no dips"] = both(
                posterior_scores(ev, behaviour, horizon, 1.0, dips=False))
    if ablate:
        start = time.perf_counter()
        ev = weekly_evidence(counts, reference.customer_id, reference.event_timestamp,
                             behaviour, horizon)
        seconds["weekly evidence"] = round(time.perf_counter() - start, 1)
        scores["weekly Gaussian detector (drift modelled), tau 1.0"] = both(
            posterior_scores(ev, behaviour, horizon, 1.0))
        # diagnostics with hidden state (not scorers of events): how much a perfect model of
        # the nuisances could add
        _, hidden = simulate_with_drift(config)
        ev = evidence(counts, reference.customer_id, reference.event_timestamp, behaviour,
                      horizon, hidden_drift=hidden["drift"])
        scores["DIAGNOSTIC (hidden drift known), tau 1.0"] = both(
            posterior_scores(ev, behaviour, horizon, 1.0))
        ev = evidence(counts, reference.customer_id, reference.event_timestamp, behaviour,
                      horizon, hidden_drift=hidden["nuisance"])
        scores["DIAGNOSTIC (hidden drift and dips known), tau 1.0"] = both(
            posterior_scores(ev, behaviour, horizon, 1.0, dips=False))
    return {"customers": customers, "seed": seed, "mechanism": mechanism, "days": days,
            "validation_rows": len(y), "validation_positives": int(y.sum()),
            "scores": scores, "detector_seconds": seconds,
            "seconds": round(time.perf_counter() - clock, 1)}


def _mean_sd(values: list[float]) -> str:
    from bench_model import _mean_sd as mean_sd

    return "{:.3f} ± {:.3f}".format(*mean_sd(values))


def summarize(runs: list[dict], tau: float) -> str:
    detector = f"likelihood detector, tau {tau}"
    columns = ["onset oracle", "onset oracle, 7 days late", "onset oracle, 14 days late",
               "onset oracle, 28 days late", "shipped", detector]
    heads = ["onset oracle", "7 d late", "14 d late", "28 d late", "shipped",
             "likelihood detector", "gap onset - shipped", "gap onset - detector"]
    lines = []
    for metric in ("roc_auc", "pr_auc"):
        lines += [f"### {metric.upper().replace('_', ' ')} (detector tau {tau})", "",
                  "| mechanism | seed | " + " | ".join(heads) + " |",
                  "|---|---|" + "---|" * len(heads)]
        for mech in sorted({r["mechanism"] for r in runs}):
            group = [r for r in runs if r["mechanism"] == mech]
            values = {k: [r["scores"][k][metric] for r in group] for k in columns}
            gaps = [[o - s for o, s in zip(values["onset oracle"], values[k])]
                    for k in ("shipped", detector)]
            for i, r in enumerate(group):
                cells = [f"{values[k][i]:.3f}" for k in columns] + [f"{g[i]:.3f}" for g in gaps]
                lines.append(f"| {mech} | {r['seed']} | " + " | ".join(cells) + " |")
            cells = [_mean_sd(values[k]) for k in columns] + [_mean_sd(g) for g in gaps]
            lines.append(f"| {mech} | mean ± sd | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _all_scorers(runs: list[dict]) -> str:
    """Every scorer, mean ± sd over the seeds, per mechanism (ROC AUC / PR AUC)."""
    lines = ["| scorer | mechanism | ROC AUC | PR AUC | per seed ROC |", "|---|---|---|---|---|"]
    for mech in sorted({r["mechanism"] for r in runs}):
        group = [r for r in runs if r["mechanism"] == mech]
        for name in group[0]["scores"]:
            roc = [r["scores"][name]["roc_auc"] for r in group]
            pr = [r["scores"][name]["pr_auc"] for r in group]
            lines.append(f"| {name} | {mech} | {_mean_sd(roc)} | {_mean_sd(pr)} | "
                         + ", ".join(f"{v:.3f}" for v in roc) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mechanisms", nargs="+", default=["default", "gradual"])
    parser.add_argument("--taus", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--headline-tau", type=float, default=1.0)
    parser.add_argument("--ablate", action="store_true",
                        help="also pooled types, no days-used part, no dips (tau 1)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ceiling_likelihood_cache"))
    parser.add_argument("--name", default="ceiling_likelihood")
    args = parser.parse_args(argv)
    runs = []
    for mechanism in args.mechanisms:
        for seed in args.seeds:
            runs.append(score_run(args.customers, seed, mechanism, args.days, args.cache,
                                  args.taus, args.ablate))
            print(json.dumps(runs[-1]), flush=True)
    results = ROOT / "benchmarks" / "results"
    (results / f"{args.name}.json").write_text(json.dumps(runs, indent=1) + "\n")
    text = summarize(runs, args.headline_tau) + "\n" + _all_scorers(runs)
    (results / f"{args.name}_tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

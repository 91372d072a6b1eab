"""Simulated SaaS usage with known churn dynamics: the demo's, benchmarks' and model's data.

**Customers** sign up over the period (a third before it starts), on a plan (free, starter,
pro, enterprise). Each has an activity level (log-normal, higher on paid plans), weekly
seasonality (weekends at 40 %), a ramp-up over the first two weeks, and a mix of the eight event
types drawn around a product-wide mix. Traits: some rarely run monitors (monitoring_run weight
cut to 5 %), some wire up integrations, and each has an eventual adoption level.

**Adoption** (``feature_adoption_score``) grows with tenure toward the customer's eventual level,
which rises with breadth (how many event types they use) and depth (activity); each event
carries the current snapshot, with a little noise.

**Churn** is driven by the domain's signals. The daily hazard is a plan base rate times: 3.0
during the first 90 days if eventual adoption is below 0.2, 2.5 without monitoring runs, 0.35
with an integration; churners are drawn from it. Most churners first **decay**: over 3-8 weeks
before churn their activity falls toward 5 % (and their adoption sags). Noise keeps the task
honest: a quarter of churners leave with no warning, and 15 % of retained customers go through
a decay episode of their own and recover. Events stop at churn.

Everything is vectorised over (customer, day) cells and events; the output is a pure function of
the config (a NumPy ``Generator`` seeded once; UUIDs are built from its bytes), so a seed gives
byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from usage_features.domain.value_objects import EventType
from usage_features.schema import CUSTOMER_SCHEMA, EVENT_SCHEMA

TYPES = [t.value for t in EventType]
#: Product-wide event-type mix, in EventType order.
TYPE_MIX = np.array([0.24, 0.24, 0.16, 0.05, 0.07, 0.015, 0.04, 0.185])
PLANS = np.array(["free", "starter", "pro", "enterprise"])
PLAN_SHARE = np.array([0.4, 0.3, 0.2, 0.1])
PLAN_ACTIVITY = np.array([0.6, 1.0, 1.4, 2.0])
PLAN_HAZARD = np.array([1.6, 1.0, 0.7, 0.4]) / 365  # yearly churn ~ 45 %, 30 %, 20 %, 11 %
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class SimulationConfig:
    customers: int = 1000
    days: int = 365
    seed: int = 0
    start: date = date(2025, 1, 1)
    dirty_fraction: float = 0.0
    events_per_day: float = 7.0  # mean over customers, before seasonality, ramp-up and decay


@dataclass
class Simulation:
    events: pa.Table
    customers: pa.Table
    config: SimulationConfig


def simulate(config: SimulationConfig) -> Simulation:
    rng = np.random.default_rng(config.seed)
    traits = _customers(rng, config)
    counts, decay = _daily_counts(rng, config, traits)
    events = _events(rng, config, traits, counts, decay)
    if config.dirty_fraction > 0:
        from usage_features.synthetic.dirty import corrupt

        events = corrupt(events, config.dirty_fraction, rng)
    return Simulation(events, _customer_table(config, traits), config)


def write_simulation(sim: Simulation, out_dir: Path) -> tuple[Path, Path]:
    """``out_dir/events.parquet`` and ``out_dir/customers.parquet`` (deterministic bytes)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "events.parquet", out_dir / "customers.parquet"
    for table, path in zip((sim.events, sim.customers), paths):
        pq.write_table(table, path, compression="zstd", row_group_size=1_000_000)
    return paths


def _customers(rng: np.random.Generator, config: SimulationConfig) -> dict[str, np.ndarray]:
    n, days = config.customers, config.days
    signup = rng.uniform(-0.5 * days, 0.85 * days, n)  # in days from start
    plan = rng.choice(len(PLANS), n, p=PLAN_SHARE)
    activity = rng.lognormal(0.0, 0.6, n) * PLAN_ACTIVITY[plan]
    activity *= config.events_per_day / activity.mean()
    mix = rng.dirichlet(TYPE_MIX * 40, n)
    no_monitoring = rng.random(n) < 0.25
    mix[no_monitoring, TYPES.index("monitoring_run")] *= 0.05
    integrates = rng.random(n) < 0.35
    mix[~integrates, TYPES.index("integration_connect")] = 0.0
    mix[integrates, TYPES.index("integration_connect")] *= 3
    mix /= mix.sum(axis=1, keepdims=True)
    breadth = (mix > 0.03).sum(axis=1) / len(TYPES)
    depth = np.log1p(activity) / np.log1p(activity.max())
    adoption = np.clip(rng.beta(2, 3, n) * 0.6 + 0.5 * breadth * depth + 0.1 * breadth
                       - 0.15, 0.02, 0.98)
    tenure_scale = rng.uniform(20, 60, n)  # days to reach ~63 % of eventual adoption

    hazard = PLAN_HAZARD[plan] * np.where(no_monitoring, 2.5, 1.0) * np.where(
        integrates, 0.35, 1.0)
    early = np.where(adoption < 0.2, 3.0, 1.0)
    # churn day: exponential with the early-life boost over the first 90 days of tenure
    u = rng.exponential(1.0, n)
    early_mass = hazard * early * 90
    churn = np.where(u < early_mass, signup + u / (hazard * early),
                     signup + 90 + (u - early_mass) / hazard)
    churn = np.ceil(np.maximum(churn, signup + 3))  # churn at a day start, never at signup
    warned = rng.random(n) >= 0.25
    decay_len = rng.integers(21, 57, n)
    false_alarm = (rng.random(n) < 0.15) & (churn >= days)
    false_start = rng.uniform(0, days, n)
    return dict(signup=signup, plan=plan, activity=activity, mix=mix, adoption=adoption,
                tenure_scale=tenure_scale, churn=churn, warned=warned, decay_len=decay_len,
                false_alarm=false_alarm, false_start=false_start,
                false_len=rng.integers(21, 57, n))


def _daily_counts(rng, config, t) -> tuple[np.ndarray, np.ndarray]:
    """Events per (customer, day) and each cell's activity multiplier (the decay)."""
    day = np.arange(config.days)[None, :]
    signup, churn = t["signup"][:, None], t["churn"][:, None]
    alive = (day >= np.floor(signup)) & (day < churn)
    weekday = (np.datetime64(config.start) + np.arange(config.days)).astype(
        "datetime64[D]").view("int64")
    weekend = ((weekday + 3) % 7 >= 5)[None, :]  # 1970-01-01 was a Thursday
    ramp = np.clip((day - signup) / 14, 0.3, 1.0)
    to_churn = churn - day
    decay = np.where(t["warned"][:, None] & (to_churn <= t["decay_len"][:, None]),
                     np.maximum(to_churn / t["decay_len"][:, None], 0.05) ** 1.5, 1.0)
    into_false = day - t["false_start"][:, None]
    dip = t["false_alarm"][:, None] & (into_false >= 0) & (into_false < t["false_len"][:, None])
    decay = np.where(dip, 0.3, decay)
    rate = t["activity"][:, None] * np.where(weekend, 0.4, 1.0) * ramp * decay
    counts = rng.poisson(np.where(alive, rate, 0.0))
    return counts.astype(np.int32), decay.astype(np.float32)


def _events(rng, config, t, counts: np.ndarray, decay: np.ndarray) -> pa.Table:
    n_events = int(counts.sum())
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    customer, day = np.divmod(flat, config.days)
    second = (rng.beta(2.2, 2.2, n_events) * 86_400).astype(np.int64)  # busier mid-day
    start_us = int(datetime.combine(config.start, datetime.min.time(),
                                    tzinfo=timezone.utc).timestamp()) * 1_000_000
    ts = start_us + day.astype(np.int64) * DAY_US + second * 1_000_000 + rng.integers(
        0, 1_000_000, n_events)
    cumulative = np.cumsum(t["mix"], axis=1)
    kind = (rng.random(n_events)[:, None] > cumulative[customer]).sum(axis=1)
    kind = np.minimum(kind, len(TYPES) - 1)
    tenure = day - t["signup"][customer]
    grown = 1 - np.exp(-np.maximum(tenure, 0) / t["tenure_scale"][customer])
    sag = 0.6 + 0.4 * decay[customer, day]
    score = t["adoption"][customer] * grown * sag + rng.normal(0, 0.02, n_events)
    score = np.round(np.clip(score, 0.0, 1.0), 4)
    order = np.lexsort((customer, ts))
    names = pa.array([f"cust-{i:05d}" for i in range(config.customers)])
    return pa.table({
        "event_id": _uuids(rng, n_events),
        "customer_id": pa.DictionaryArray.from_arrays(pa.array(customer[order].astype(np.int32)),
                                                      names).cast(pa.string()),
        "timestamp": pa.array(ts[order], type=pa.timestamp("us", tz="UTC")),
        "event_type": pa.DictionaryArray.from_arrays(pa.array(kind[order].astype(np.int32)),
                                                     pa.array(TYPES)).cast(pa.string()),
        "feature_adoption_score": pa.array(score[order]),
    }, schema=EVENT_SCHEMA)


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` version-4 UUID strings from the generator's bytes, built without a Python loop."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = digits[raw >> 4], digits[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst in ((slice(0, 8), slice(0, 8)), (slice(8, 12), slice(9, 13)),
                     (slice(12, 16), slice(14, 18)), (slice(16, 20), slice(19, 23)),
                     (slice(20, 32), slice(24, 36))):
        text[:, dst] = hexed[:, src]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def _customer_table(config: SimulationConfig, t) -> pa.Table:
    start_us = int(datetime.combine(config.start, datetime.min.time(),
                                    tzinfo=timezone.utc).timestamp()) * 1_000_000
    signup = start_us + (t["signup"] * DAY_US).astype(np.int64)
    churned = t["churn"] < config.days
    churn_us = start_us + (t["churn"] * DAY_US).astype(np.int64)
    return pa.table({
        "customer_id": [f"cust-{i:05d}" for i in range(config.customers)],
        "signup_at": pa.array(signup, type=pa.timestamp("us", tz="UTC")),
        "churned_at": pa.array(np.where(churned, churn_us, 0), type=pa.timestamp("us", tz="UTC"),
                               mask=~churned),
        "plan": pa.array(PLANS[t["plan"]]),
    }, schema=CUSTOMER_SCHEMA)

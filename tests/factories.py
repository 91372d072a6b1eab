"""Test data builders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from usage_features.domain import EventType, UsageEvent

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def make_event(**overrides) -> UsageEvent:
    fields = {
        "event_id": str(uuid.uuid4()),
        "customer_id": "cust-1",
        "timestamp": T0,
        "event_type": EventType.LOGIN,
        "feature_adoption_score": 0.5,
    }
    fields.update(overrides)
    return UsageEvent(**fields)


def random_events(seed: int, customers: int = 25, days: int = 200, start=T0):
    """A small, irregular event log as a DataFrame of the five event columns.

    Customers differ in activity, go silent for stretches, share exact timestamps (to exercise
    tie rules) and use every event type.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frames = []
    types = [t.value for t in EventType]
    for c in range(customers):
        rate = rng.gamma(1.0, 2.0)
        active = rng.random(days) < rng.uniform(0.2, 0.9)
        counts = rng.poisson(rate, days) * active
        first = int(rng.integers(0, days // 2))
        counts[:first] = 0
        n = int(counts.sum())
        if n == 0:
            continue
        day = np.repeat(np.arange(days), counts)
        seconds = rng.integers(0, 86_400, n)
        seconds[rng.random(n) < 0.05] = 0  # exactly at midnight
        micros = np.where(seconds == 0, 0, rng.integers(0, 1_000_000, n))  # sub-second times
        ts = (pd.Timestamp(start) + pd.to_timedelta(day, "D") + pd.to_timedelta(seconds, "s")
              + pd.to_timedelta(micros, "us"))
        dup = rng.random(n) < 0.05  # share the previous event's timestamp
        ts = pd.Series(ts).where(~np.roll(dup, -1), pd.Series(ts).shift(-1)).ffill()
        frames.append(pd.DataFrame({
            "event_id": [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)],
            "customer_id": f"cust-{c:03d}",
            "timestamp": ts.to_numpy(),
            "event_type": rng.choice(types, n),
            "feature_adoption_score": np.round(rng.uniform(0, 1, n), 4),
        }))
    events = pd.concat(frames, ignore_index=True)
    events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True)
    return events


def customers_for(events, seed: int = 0):
    """A customers table for ``events``' customers, plus one with no events at all.

    Signups come up to five days before a customer's first event, never before the day of the
    first of ``events``: the event history is complete (a customer who signed up before it
    would not be scored for 90 days, :mod:`usage_features.domain.status`)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    first = events.groupby("customer_id")["timestamp"].min()
    signup = first - pd.to_timedelta(rng.integers(0, 5 * 86_400, len(first)), "s")
    history = pd.Timestamp(events.timestamp.min()).floor("D")
    signup = signup.clip(lower=history)
    table = pd.DataFrame({"customer_id": first.index, "signup_at": signup.to_numpy(),
                          "churned_at": pd.NaT, "plan": "pro"})
    never_active = pd.DataFrame({"customer_id": ["cust-silent"],
                                 "signup_at": [max(pd.Timestamp(T0), history)],
                                 "churned_at": [pd.NaT], "plan": ["free"]})
    table = pd.concat([table, never_active], ignore_index=True)
    table["signup_at"] = pd.to_datetime(table["signup_at"], utc=True)
    table["churned_at"] = pd.to_datetime(table["churned_at"], utc=True)
    return table


def churn_dataset(seed: int, customers: int = 60, days: int = 240, start=None):
    """Events and a customers table where about half the customers churn (events stop then).

    Anchored so that its last day is today: online (materialized now) and historical values
    can be compared at the present time.
    """
    import numpy as np
    import pandas as pd

    end = pd.Timestamp.now(tz="UTC").floor("D")
    start = pd.Timestamp(start) if start is not None else end - pd.Timedelta(days=days)
    events = random_events(seed, customers=customers, days=days, start=start)
    events = events[events.timestamp < pd.Timestamp.now(tz="UTC")]
    rng = np.random.default_rng(seed)
    table = customers_for(events, seed)
    churners = table.customer_id[rng.random(len(table)) < 0.5]
    cut = pd.Series(start + pd.to_timedelta(rng.integers(60, days, len(churners)), "D"),
                    index=churners.to_numpy())
    cut = cut[cut > table.set_index("customer_id").signup_at.reindex(cut.index)]
    gone = events.customer_id.map(cut)
    events = events[gone.isna() | (events.timestamp < gone)]
    table["churned_at"] = pd.to_datetime(table.customer_id.map(cut), utc=True)
    return events.reset_index(drop=True), table


#: The columns of :func:`training_frame`, a model-fitting data set that is not churn data.
FEATURES = ["events", "silence_days", "ratio", "adoption", "flag"]


def training_frame(rows: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Churn depends on every feature, and on whether ``silence_days`` is missing at all."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "events": rng.poisson(20, rows).astype(float),
        "silence_days": rng.exponential(10, rows),
        "ratio": rng.normal(1, 0.4, rows),
        "adoption": rng.random(rows),
        "flag": (rng.random(rows) < 0.3).astype(float),
    })
    never_active = rng.random(rows) < 0.2
    frame.loc[never_active, "silence_days"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "ratio"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "adoption"] = np.nan
    risk = (0.08 * np.nan_to_num(frame.silence_days.to_numpy(), nan=5) - 0.05 * frame.events
            - 2 * np.nan_to_num(frame.adoption.to_numpy(), nan=0.1) + 1.5 * never_active
            + frame.flag - np.nan_to_num(frame.ratio.to_numpy(), nan=0.5))
    churned = (risk + rng.normal(0, 1, rows) > 0).astype(int)
    return frame, churned


def horizon_model(frame: pd.DataFrame, churned: np.ndarray, horizons=(60, 90),
                  classified: tuple[int, ...] = (90,), seed: int = 0):
    """A :class:`~usage_features.training.horizons.HorizonModel` on :func:`training_frame`'s
    rows: Cox curves on made-up times to churn (sooner for ``churned`` rows, a third of the
    rows censored), and the boosted classifier for the ``classified`` horizons."""
    # deferred: the factories are imported by tests that never fit a model
    from usage_features.training.estimators import churn_classifier
    from usage_features.training.horizons import HorizonModel
    from usage_features.training.survival import fit_cox

    rng = np.random.default_rng(seed)
    days = rng.exponential(np.where(churned == 1, 40.0, 200.0))
    event = rng.random(len(days)) > 1 / 3
    features = list(frame.columns)
    curves = fit_cox(frame.to_numpy(dtype=float), days, event)
    classifiers = {h: churn_classifier(features).fit(frame, churned) for h in classified}
    return HorizonModel(horizons, curves, classifiers, len(features))

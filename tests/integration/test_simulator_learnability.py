"""Churn in the simulated data is learnable from windowed counts, but not trivially (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usage_features.simulation import SimulationConfig, simulate

pytestmark = pytest.mark.slow
HORIZON, STEP = 30, 7


def observations(sim) -> pd.DataFrame:
    """Weekly (customer, day t) rows: event counts over windows before t, churn in (t, t+30]."""
    days = sim.config.days
    customers = sim.customers.to_pandas()
    start = pd.Timestamp(sim.config.start, tz="UTC")
    index = pd.Series(np.arange(len(customers)), index=customers.customer_id)
    events = sim.events.to_pandas()
    who = index[events.customer_id].to_numpy()
    day = ((events.timestamp - start) // pd.Timedelta(days=1)).to_numpy()

    def cumulative(mask: np.ndarray) -> np.ndarray:  # [c, d]: events on days before d
        counts = np.zeros((len(customers), days + 1))
        np.add.at(counts, (who[mask], day[mask] + 1), 1)
        return counts.cumsum(axis=1)

    every = cumulative(np.ones(len(events), bool))
    monitoring = cumulative((events.event_type == "monitoring_run").to_numpy())
    integration = cumulative((events.event_type == "integration_connect").to_numpy())
    signup = ((customers.signup_at - start) / pd.Timedelta(days=1)).to_numpy()
    churn = ((customers.churned_at - start) / pd.Timedelta(days=1)).to_numpy()
    rows = []
    for t in range(60, days - HORIZON + 1, STEP):
        c = np.flatnonzero((signup <= t) & ~(churn <= t))

        def window(counts, length, offset=0, c=c, t=t):
            return counts[c, t - offset] - counts[c, max(t - offset - length, 0)]

        rows.append(pd.DataFrame({
            "t": t, "events_7d": window(every, 7), "events_30d": window(every, 30),
            "events_prev_30d": window(every, 30, 30), "events_90d": window(every, 90),
            "monitoring_30d": window(monitoring, 30), "integration_90d": window(integration, 90),
            "tenure": t - signup[c], "label": (churn[c] <= t + HORIZON).astype(int),
        }))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_model_on_windowed_counts_predicts_churn_well_but_not_perfectly(seed):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    rows = observations(simulate(SimulationConfig(customers=3000, days=365, seed=seed)))
    split = np.sort(rows.t.unique())[int(rows.t.nunique() * 0.7)]
    train, test = rows[rows.t < split - HORIZON], rows[rows.t >= split]
    features = [c for c in rows.columns if c not in ("t", "label")]
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)
    model.fit(train[features], train.label)
    auc = roc_auc_score(test.label, model.predict_proba(test[features])[:, 1])
    assert 0.72 < auc < 0.92

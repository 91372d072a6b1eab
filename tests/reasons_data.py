"""Constructed customers over the served features, and a churn model fitted on them, for the
reasons' tests: churn rises with silence, decay, low adoption and no monitoring runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from usage_features.features.spec import served_features

FEATURES = [f.name for f in served_features()]


def customers(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``rows`` customers' served features and whether each churned."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 1.0, rows)  # events per day
    silent = rng.exponential(6, rows)
    decay = rng.uniform(0.2, 1.5, rows)
    count_30 = rng.poisson(rate * 30 * np.where(silent > 30, 0, 1))
    count_7 = rng.poisson(count_30 / 30 * 7 * np.clip(decay, 0, 1.2))
    prev_30 = rng.poisson(count_30 / decay)
    tenure = rng.uniform(5, 700, rows)
    adoption = rng.beta(2, 3, rows)
    monitoring = rng.poisson(rate * 3)
    since_monitoring = np.where(monitoring > 0, rng.uniform(0, 30, rows),
                                rng.choice([np.nan, 45.0], rows))
    integrations = rng.poisson(0.8, rows)
    frame = pd.DataFrame({name: np.zeros(rows) for name in FEATURES})
    frame["event_count_30d"] = count_30
    frame["event_count_7d"] = np.minimum(count_7, count_30)
    frame["event_count_90d"] = count_30 + prev_30 + rng.poisson(rate * 30)
    frame["event_count_prev30d"] = prev_30
    for name in ("login", "dashboard_view", "alert_configured", "report_export", "user_invited",
                 "api_call"):
        frame[f"{name}_count_30d"] = rng.binomial(count_30, 0.12)
    frame["monitoring_run_count_30d"] = monitoring
    frame["integration_connect_count_30d"] = rng.binomial(integrations, 0.4)
    frame["integration_connect_count_90d"] = integrations
    frame["active_days_30d"] = np.minimum(30, np.ceil(count_30 / np.maximum(rate, 1)))
    frame["adoption_score_latest"] = adoption
    frame["adoption_score_mean_30d"] = np.clip(adoption + rng.normal(0, 0.05, rows), 0, 1)
    frame["adoption_score_change_30d"] = rng.normal(0, 0.08, rows)
    frame["decay_ratio_7d_30d"] = np.where(count_30 > 0, frame.event_count_7d * 30
                                           / np.maximum(count_30, 1) / 7, 0.0)
    frame["decay_ratio_30d_prev30d"] = np.where(prev_30 > 0, count_30 / np.maximum(prev_30, 1),
                                                np.where(count_30 > 0, 1.0, 0.0))
    frame["days_since_last_event"] = silent
    frame["days_since_last_monitoring_run"] = since_monitoring
    frame["tenure_days"] = tenure
    frame["is_first_90_days"] = (tenure < 90).astype(float)
    frame["low_adoption_early_life"] = ((tenure < 90) & (adoption < 0.2)
                                        & (frame.decay_ratio_7d_30d < 1)).astype(float)
    risk = (0.12 * silent - 2.5 * adoption - 0.6 * np.minimum(monitoring, 3)
            - 0.8 * np.minimum(integrations, 2) - 1.2 * np.clip(decay, 0, 1.2)
            + 1.5 * frame.low_adoption_early_life.to_numpy())
    churned = (risk + rng.logistic(0, 0.6, rows) > -1.0).astype(int)
    return frame, churned

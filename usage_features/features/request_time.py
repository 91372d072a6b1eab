"""Request-time features: pure functions of stored features and the request time ``as_of``.

Run by the ``customer_recency`` on-demand feature view, so they are exact at ``t`` both in
historical retrieval (``as_of`` = the entity row's ``event_timestamp``) and online (``as_of`` =
the time passed by the caller, or now). Nothing here reads the clock except :func:`compute`,
and only when the request carries no time.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from usage_features.domain.value_objects import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD

#: Column of the request time in the on-demand view's input (Feast's entity-row timestamp).
AS_OF_COLUMN = "event_timestamp"
_DAY = pd.Timedelta(days=1)


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def days_since_last_event(last_event_at: pd.Series, as_of: pd.Series) -> pd.Series:
    """Days from the latest event before the as-of day to ``as_of``; NaN if none."""
    return (as_of - _utc(last_event_at)) / _DAY


def days_since_last_monitoring_run(last_monitoring_run_at: pd.Series,
                                   as_of: pd.Series) -> pd.Series:
    """Days from the latest monitoring_run to ``as_of``; NaN if none."""
    return (as_of - _utc(last_monitoring_run_at)) / _DAY


def tenure_days(signup_at: pd.Series, as_of: pd.Series) -> pd.Series:
    """Days from signup to ``as_of``; NaN before signup or for a customer not in the table."""
    days = (as_of - _utc(signup_at)) / _DAY
    return days.where(days >= 0)


def is_first_90_days(tenure_days: pd.Series) -> pd.Series:
    """Within the customer's early life (0 <= tenure < 90 days)."""
    return (tenure_days >= 0) & (tenure_days < EARLY_LIFE_DAYS)


def low_adoption_early_life(is_first_90_days: pd.Series, adoption_score_latest: pd.Series,
                            decay_ratio_7d_30d: pd.Series) -> pd.Series:
    """The domain's strongest early signal: early life, adoption < 0.2, declining frequency."""
    return (is_first_90_days & (adoption_score_latest < LOW_ADOPTION_THRESHOLD)
            & (decay_ratio_7d_30d < 1.0))


def compute(inputs: pd.DataFrame, as_of: datetime | None = None) -> pd.DataFrame:
    """All request-time features for the on-demand view's ``inputs``."""
    if as_of is not None:
        moment = pd.Series(pd.Timestamp(as_of), index=inputs.index)
    elif AS_OF_COLUMN in inputs:
        moment = inputs[AS_OF_COLUMN]
    else:
        moment = pd.Series(pd.Timestamp(datetime.now(timezone.utc)), index=inputs.index)
    moment = _utc(moment)
    out = pd.DataFrame(index=inputs.index)
    out["days_since_last_event"] = days_since_last_event(inputs["last_event_at"], moment)
    out["days_since_last_monitoring_run"] = days_since_last_monitoring_run(
        inputs["last_monitoring_run_at"], moment)
    out["tenure_days"] = tenure_days(inputs["signup_at"], moment)
    out["is_first_90_days"] = is_first_90_days(out["tenure_days"])
    out["low_adoption_early_life"] = low_adoption_early_life(
        out["is_first_90_days"], inputs["adoption_score_latest"].astype(float),
        inputs["decay_ratio_7d_30d"].astype(float))
    return out.astype({"days_since_last_event": np.float64,
                       "days_since_last_monitoring_run": np.float64,
                       "tenure_days": np.float64})

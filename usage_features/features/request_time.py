"""Request-time features: pure functions of stored features and the request time ``as_of``.

Run by the ``customer_recency`` on-demand feature view, so they are exact at ``t`` both in
historical retrieval (``as_of`` = the entity row's ``event_timestamp``) and online (``as_of`` =
the time passed by the caller, or now). The functions take NumPy arrays of seconds since the
epoch (NaN for "none"), so the on-demand view (a DataFrame) and the online scorer (plain arrays,
no DataFrame on the hot path) run the very same code. Nothing here reads the clock except
:func:`compute`, and only when the request carries no time. A row's status at ``t`` (active,
churned, incomplete or unknown: :func:`statuses`, the domain's rule) is computed from the same
arrays, for the online scorer and ``predict`` alike.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from usage_features.domain.status import (
    ACTIVE,
    CHURNED,
    DAY_SECONDS,
    INCOMPLETE,
    UNKNOWN,
    is_churned,
    is_incomplete,
    is_unknown,
)
from usage_features.domain.value_objects import early_life_churn_signal, is_early_life
from usage_features.features.spec import (
    ADOPTION_SCORE_LATEST,
    DECAY_RATIO_7D_30D,
    IS_FIRST_90_DAYS,
    LONGEST_WINDOW_DAYS,
    LOW_ADOPTION_EARLY_LIFE,
    SIGNUP_AT,
    TENURE_DAYS,
    is_recency_time,
    recency_feature,
)

#: Column of the request time in the on-demand view's input (Feast's entity-row timestamp).
AS_OF_COLUMN = "event_timestamp"
#: The stored features the request-time features are computed from, beside the recency times
#: (see :func:`is_recency_time`).
INPUTS = (SIGNUP_AT, ADOPTION_SCORE_LATEST, DECAY_RATIO_7D_30D)


def is_input(name: str) -> bool:
    """Whether the stored feature ``name`` is an input of the request-time features."""
    return name in INPUTS or is_recency_time(name)


def days_since(last_at: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """Days from a latest event before the as-of day to ``as_of``; NaN if none."""
    return (as_of - last_at) / DAY_SECONDS


def tenure_days(signup_at: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """Days from signup to ``as_of``; NaN before signup or for a customer not in the table."""
    days = (as_of - signup_at) / DAY_SECONDS
    return np.where(days >= 0, days, np.nan)


def is_first_90_days(tenure_days: np.ndarray) -> np.ndarray:
    """Within the customer's early life (the domain's :func:`is_early_life`)."""
    return is_early_life(tenure_days)


def low_adoption_early_life(tenure_days: np.ndarray, adoption_score_latest: np.ndarray,
                            decay_ratio_7d_30d: np.ndarray) -> np.ndarray:
    """The domain's :func:`early_life_churn_signal`; declining frequency is a last 7 days
    below the month's weekly rate (``decay_ratio_7d_30d < 1``)."""
    return early_life_churn_signal(adoption_score_latest, tenure_days, decay_ratio_7d_30d < 1.0)


def compute_arrays(inputs: dict[str, np.ndarray], as_of: np.ndarray) -> dict[str, np.ndarray]:
    """All request-time features from the inputs (:func:`is_input`; times as epoch seconds)
    and ``as_of``: one recency per ``last_<what>_at`` input, in the inputs' order."""
    tenure = tenure_days(inputs[SIGNUP_AT], as_of)
    return {
        **{recency_feature(name): days_since(values, as_of)
           for name, values in inputs.items() if is_recency_time(name)},
        TENURE_DAYS: tenure,
        IS_FIRST_90_DAYS: is_first_90_days(tenure),
        LOW_ADOPTION_EARLY_LIFE: low_adoption_early_life(
            tenure, inputs[ADOPTION_SCORE_LATEST], inputs[DECAY_RATIO_7D_30D]),
    }


def statuses(days_since_last_event: np.ndarray, tenure_days: np.ndarray,
             churned_at: np.ndarray, as_of: np.ndarray, history_from: float) -> np.ndarray:
    """The status of each row (:mod:`usage_features.domain.status`: active, churned,
    incomplete or unknown) from its request-time recency and tenure, its ``churned_at``,
    ``as_of`` and the day the event history starts, ``history_from`` (epoch seconds, NaN for
    "none"), as an object array."""
    out = np.full(len(as_of), ACTIVE, dtype=object)
    out[is_unknown(days_since_last_event, tenure_days)] = UNKNOWN
    out[is_incomplete(tenure_days, as_of, history_from, LONGEST_WINDOW_DAYS)] = INCOMPLETE
    out[is_churned(churned_at, as_of)] = CHURNED
    return out


def epoch_seconds(values) -> np.ndarray:
    """Datetimes (a Series, a list with None, or an array) as float epoch seconds, NaN for none.

    Exactly ``datetime.timestamp()`` of each value (whole microseconds, then one correctly
    rounded division), whichever path a time comes by: pandas' ``total_seconds()`` rounds the
    nanoseconds to a float first and differs in the last bit for about a quarter of times, so
    a request-time feature computed online and historically at the same time would differ.
    """
    if isinstance(values, list) and all(
            v is None or (isinstance(v, datetime) and v.tzinfo is not None) for v in values):
        # the online store's answer: a short list of aware datetimes, no pandas needed
        return np.array([np.nan if v is None else v.timestamp() for v in values], dtype=float)
    # cache=False: pandas' cache check walks the values in Python (0.2 s per 100,000 rows)
    stamps = pd.to_datetime(pd.Series(values), utc=True, cache=False)
    micros = stamps.dt.as_unit("us").to_numpy(dtype="datetime64[us]").view("int64")
    return np.where(stamps.isna().to_numpy(), np.nan, micros / 1e6)


def compute(inputs: pd.DataFrame, as_of: datetime | None = None) -> pd.DataFrame:
    """All request-time features for the on-demand view's ``inputs`` (a DataFrame)."""
    if as_of is not None:
        moment = np.full(len(inputs), pd.Timestamp(as_of).timestamp())
    elif AS_OF_COLUMN in inputs:
        moment = epoch_seconds(inputs[AS_OF_COLUMN])
    else:
        moment = np.full(len(inputs), datetime.now(UTC).timestamp())
    arrays = {name: epoch_seconds(inputs[name]) if name.endswith("_at")
              else pd.to_numeric(inputs[name], errors="coerce").to_numpy(dtype=float)
              for name in inputs.columns if is_input(name)}
    return pd.DataFrame(compute_arrays(arrays, moment), index=inputs.index)

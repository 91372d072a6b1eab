"""Observation rows and churn labels from the customers table, without censoring.

A customer is observed at regular times ``t`` on a global grid (every ``interval_days`` from
``grid_start``) while active (``signup_at <= t`` and not yet churned at ``t``). The label is
whether the customer churned within ``(t, t + horizon]``. A row is kept only if its whole label
window is observed (``t + horizon <= cutoff``); otherwise "did not churn" would be a guess.
Nor is a row kept whose features the event history does not cover (:func:`complete_rows`).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from usage_features.domain.status import DAY_SECONDS, is_incomplete

REQUIRED = ("customer_id", "signup_at", "churned_at")


class LabelError(ValueError):
    """The customers table cannot produce labels."""


def validate_customers(customers: pd.DataFrame) -> pd.DataFrame:
    """The customers table with UTC timestamps; a clear error for anything unusable."""
    missing = [c for c in REQUIRED if c not in customers.columns]
    if missing:
        raise LabelError(f"customers table is missing column(s): {', '.join(missing)}")
    out = customers.copy()
    for column in ("signup_at", "churned_at"):
        out[column] = pd.to_datetime(out[column], utc=True)
    if out.signup_at.isna().any():
        bad = out.loc[out.signup_at.isna(), "customer_id"].head(3).tolist()
        raise LabelError(f"signup_at is missing for customer(s) {bad}")
    early = out.churned_at < out.signup_at
    if early.any():
        bad = out.loc[early, "customer_id"].head(3).tolist()
        raise LabelError(f"churned_at is before signup_at for customer(s) {bad}")
    if out.customer_id.duplicated().any():
        bad = out.loc[out.customer_id.duplicated(), "customer_id"].head(3).tolist()
        raise LabelError(f"duplicate customer_id(s) {bad}")
    return out


def observation_rows(customers: pd.DataFrame, grid_start: datetime, cutoff: datetime,
                     horizon_days: int = 30, interval_days: int = 7) -> pd.DataFrame:
    """``customer_id, event_timestamp, label`` rows; see the module docstring.

    ``cutoff`` is the end of observed data (or the training end, if earlier).
    """
    if horizon_days <= 0 or interval_days <= 0:
        raise LabelError("horizon_days and interval_days must be positive")
    customers = validate_customers(customers)
    horizon = pd.Timedelta(days=horizon_days)
    last_t = pd.Timestamp(cutoff) - horizon
    grid = pd.date_range(pd.Timestamp(grid_start), last_t, freq=pd.Timedelta(days=interval_days))
    if len(grid) == 0:
        raise LabelError(f"no observation time fits: the {horizon_days}-day label window of a "
                         f"row at {grid_start} already ends after the cutoff {cutoff}")
    ts = grid.tz_convert(None).to_numpy()[None, :]  # naive UTC datetime64 for numpy
    signup = customers.signup_at.dt.tz_convert(None).to_numpy()[:, None]
    churn = customers.churned_at.dt.tz_convert(None).to_numpy()[:, None]
    never = np.isnat(churn)
    active = (signup <= ts) & (never | (ts < churn))
    label = ~never & (churn <= ts + horizon.to_timedelta64())
    rows, cols = np.nonzero(active)
    out = pd.DataFrame({
        "customer_id": customers.customer_id.to_numpy()[rows],
        "event_timestamp": grid[cols],
        "label": label[rows, cols].astype(np.int8),
    })
    if out.empty:
        raise LabelError("no customer is active at any observation time")
    return out.sort_values(["event_timestamp", "customer_id"], ignore_index=True)


def complete_rows(rows: pd.DataFrame, customers: pd.DataFrame, history_from: datetime | None,
                  window_days: int) -> pd.DataFrame:
    """``rows`` (``customer_id, event_timestamp, ...``) without those the scorer would call
    incomplete (:func:`usage_features.domain.status.is_incomplete`): a customer who signed up
    before the event history starts (``history_from``, a UTC day start; None: every row is
    kept), observed before ``window_days`` after it. Their windows would count only the
    events since the history starts: an undercount that reads like decay."""
    if history_from is None:
        return rows
    signup = customers.set_index("customer_id").signup_at.dt.floor("s")
    as_of = rows.event_timestamp.astype("datetime64[us, UTC]").astype("int64") / 1e6
    signed = rows.customer_id.map(signup).astype("datetime64[us, UTC]").astype("int64") / 1e6
    tenure = ((as_of - signed) / DAY_SECONDS).to_numpy()
    start = pd.Timestamp(history_from).timestamp()
    return rows[~is_incomplete(tenure, as_of.to_numpy(), start, window_days)]


def time_split(rows: pd.DataFrame, horizon_days: int, validation_share: float = 0.25
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Earlier observation times train, later ones validate (never a random split).

    Train rows whose label window reaches past the split are dropped (a purge gap), so no
    training label is decided by what happens during the validation period.
    """
    times = np.sort(rows.event_timestamp.unique())
    if len(times) < 2:
        raise LabelError("need observations at two or more times for a time-based split")
    split = pd.Timestamp(times[min(len(times) - 1, int(len(times) * (1 - validation_share)))])
    validate = rows[rows.event_timestamp >= split]
    train = rows[rows.event_timestamp + pd.Timedelta(days=horizon_days) <= split]
    if train.empty or validate.empty:
        raise LabelError("the time split leaves no training or no validation rows; "
                         "use more history or a shorter horizon")
    return train, validate, split


def survival_rows(customers: pd.DataFrame, grid_start: datetime, cutoff: datetime,
                  interval_days: int = 7) -> pd.DataFrame:
    """``customer_id, event_timestamp, duration_days, churned`` rows for a time-to-churn model.

    The same grid and the same active customers as :func:`observation_rows`, but every
    observation time before ``cutoff`` is kept: nothing is dropped for a window the data does
    not cover. ``duration_days`` runs from ``t`` to the churn when it happened by ``cutoff``
    (``churned`` true), else to ``cutoff`` (right-censored, ``churned`` false): a customer
    still active at the data's end, or one who churned after ``cutoff``, is never an event.
    """
    if interval_days <= 0:
        raise LabelError("interval_days must be positive")
    customers = validate_customers(customers)
    end = pd.Timestamp(cutoff)
    grid = pd.date_range(pd.Timestamp(grid_start), end, freq=pd.Timedelta(days=interval_days))
    grid = grid[grid < end]
    if len(grid) == 0:
        raise LabelError(f"no observation time fits before the cutoff {cutoff}")
    ts = grid.tz_convert(None).to_numpy()[None, :]
    signup = customers.signup_at.dt.tz_convert(None).to_numpy()[:, None]
    churn = customers.churned_at.dt.tz_convert(None).to_numpy()[:, None]
    never = np.isnat(churn)
    active = (signup <= ts) & (never | (ts < churn))
    end64 = end.tz_convert(None).to_datetime64() if end.tzinfo else end.to_datetime64()
    churned = ~never & (churn <= end64)
    stop = np.where(churned, churn, end64)
    rows, cols = np.nonzero(active)
    day = np.timedelta64(1, "D")
    out = pd.DataFrame({
        "customer_id": customers.customer_id.to_numpy()[rows],
        "event_timestamp": grid[cols],
        "duration_days": ((np.broadcast_to(stop, active.shape) - ts)[rows, cols] / day)
        .astype(np.float64),
        "churned": np.broadcast_to(churned, active.shape)[rows, cols],
    })
    if out.empty:
        raise LabelError("no customer is active at any observation time")
    return out.sort_values(["event_timestamp", "customer_id"], ignore_index=True)


def horizon_labels(duration_days, churned, follow_up_days, horizon_days: float) -> np.ndarray:
    """Churn within ``horizon_days`` of each survival row, where the data covers that window
    (``follow_up_days``, from ``t`` to the end of the data, at least the horizon): 1.0 or 0.0;
    NaN where it does not (censored: a churn seen early would be kept and a stay dropped, a
    biased sample). Where known, the labels :func:`observation_rows` gives."""
    duration = np.asarray(duration_days, dtype=np.float64)
    event = np.asarray(churned, dtype=bool)
    known = np.asarray(follow_up_days, dtype=np.float64) >= horizon_days
    return np.where(~known, np.nan, (event & (duration <= horizon_days)).astype(np.float64))


def censor_at(duration_days, churned, follow_up_days) -> tuple[np.ndarray, np.ndarray]:
    """Durations and events as seen at an earlier end of data: each row's follow-up cut to
    ``follow_up_days`` (from its own ``t``), a churn after it not an event."""
    duration = np.asarray(duration_days, dtype=np.float64)
    limit = np.asarray(follow_up_days, dtype=np.float64)
    event = np.asarray(churned, dtype=bool) & (duration <= limit)
    return np.minimum(duration, limit), event


def sample_customers(customers: pd.DataFrame, rows: pd.DataFrame, max_rows: int
                     ) -> pd.DataFrame | None:
    """The customers a training run keeps when their observation ``rows`` exceed
    ``max_rows`` (None: no sample, every customer; ``max_rows`` 0: never a sample).

    Whole customers (every row of a customer, or none), in the order of a fixed hash of their
    ids (the same sample on every run over the same table, unrelated to signup, plan or
    churn), taken until their rows reach ``max_rows``: the sample holds at least ``max_rows``
    observation rows and at most one customer's rows more."""
    if not max_rows or len(rows) <= max_rows:
        return None
    ids = customers.customer_id.to_numpy(dtype=object)
    ordered = customers.iloc[np.argsort(pd.util.hash_array(ids), kind="stable")]
    counts = ordered.customer_id.map(rows.customer_id.value_counts()).fillna(0).to_numpy()
    reached = int(np.searchsorted(np.cumsum(counts), max_rows, side="left"))
    return ordered.iloc[:reached + 1]

"""Brute-force reference implementation of the churn features (a test oracle).

Deliberately slow and obvious: for every entity row it filters that customer's raw events with
plain pandas boolean masks and computes each feature straight from its definition. It imports
nothing from ``usage_features`` except the domain constants and :class:`EventType`, so it stays
independent of the production (DuckDB) feature code it is used to check.

Semantics, for an entity row ``(customer, t)``:

* ``D`` is ``t`` truncated to its UTC day (the midnight at or before ``t``).
* A window of N days covers the customer's events with ``D - N days <= timestamp < D``.
  Nothing at or after ``D`` is used by the windowed features.
* Request-time features (``days_since_*``, ``tenure_days``, ``is_first_90_days``,
  ``low_adoption_early_life``) are measured from ``t`` itself, in fractional days.
"""

from __future__ import annotations

import math

import pandas as pd

from usage_features.domain.value_objects import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD, EventType

ONE_DAY = pd.Timedelta(days=1)

TYPE_COUNT_FEATURES = [f"{event_type.value}_count_30d" for event_type in EventType]

#: Features computed over [D - N days, D) windows (or "latest event before D").
WINDOWED_FEATURES = [
    "event_count_7d",
    "event_count_14d",
    "event_count_30d",
    "event_count_90d",
    *TYPE_COUNT_FEATURES,
    "integration_connect_count_90d",
    "event_count_prev30d",
    "decay_ratio_7d_30d",
    "decay_ratio_30d_prev30d",
    "decay_ratio_7d_90d",
    "event_trend_4w",
    "advanced_share_ratio_7d_90d",
    "active_days_30d",
    "adoption_score_latest",
    "adoption_score_mean_30d",
    "adoption_score_change_30d",
    "last_event_at",
    "last_monitoring_run_at",
]

#: Features computed at the request time t itself.
REQUEST_TIME_FEATURES = [
    "days_since_last_event",
    "days_since_last_monitoring_run",
    "tenure_days",
    "is_first_90_days",
    "low_adoption_early_life",
]

ALL_FEATURES = WINDOWED_FEATURES + REQUEST_TIME_FEATURES

_INT_FEATURES = [
    "event_count_7d",
    "event_count_14d",
    "event_count_30d",
    "event_count_90d",
    *TYPE_COUNT_FEATURES,
    "integration_connect_count_90d",
    "event_count_prev30d",
    "active_days_30d",
]
_BOOL_FEATURES = ["is_first_90_days", "low_adoption_early_life"]
_TIMESTAMP_FEATURES = ["last_event_at", "last_monitoring_run_at"]


def _utc(value) -> pd.Timestamp:
    """A tz-aware timestamp converted to UTC (tz-naive input is an error, not guessed at)."""
    timestamp = pd.Timestamp(value)
    if timestamp.tzinfo is None:
        raise ValueError(f"timestamp must be tz-aware, got naive {timestamp!r}")
    return timestamp.tz_convert("UTC")


def _in_window(events: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The events with start <= timestamp < end."""
    return events[(events["timestamp"] >= start) & (events["timestamp"] < end)]


def brute_force_event_count(events: pd.DataFrame, customer_id: str, start, end) -> int:
    """How many of ``customer_id``'s events have ``start <= timestamp < end`` (any offsets)."""
    timestamps = pd.to_datetime(events["timestamp"], utc=True)
    mine = events.assign(timestamp=timestamps)[events["customer_id"] == customer_id]
    return len(_in_window(mine, _utc(start), _utc(end)))


def _latest_before(events: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series | None:
    """The latest event with timestamp < cutoff (ties: largest event_id), or None."""
    before = events[events["timestamp"] < cutoff]
    if before.empty:
        return None
    latest_time = before["timestamp"].max()
    at_latest_time = before[before["timestamp"] == latest_time]
    return at_latest_time.loc[at_latest_time["event_id"].idxmax()]


def _score_of(event: pd.Series | None) -> float:
    return math.nan if event is None else float(event["feature_adoption_score"])


def _features_for_row(
    customer_events: pd.DataFrame, signup_at: pd.Timestamp | None, t: pd.Timestamp
) -> dict:
    day = t.floor("D")  # D: the UTC midnight at or before t
    last_7 = _in_window(customer_events, day - 7 * ONE_DAY, day)
    last_30 = _in_window(customer_events, day - 30 * ONE_DAY, day)
    last_90 = _in_window(customer_events, day - 90 * ONE_DAY, day)
    prev_30 = _in_window(customer_events, day - 60 * ONE_DAY, day - 30 * ONE_DAY)

    row: dict = {
        "event_count_7d": len(last_7),
        "event_count_30d": len(last_30),
        "event_count_90d": len(last_90),
    }
    for event_type in EventType:
        of_this_type = last_30["event_type"] == event_type.value
        row[f"{event_type.value}_count_30d"] = int(of_this_type.sum())
    row["integration_connect_count_90d"] = int(
        (last_90["event_type"] == EventType.INTEGRATION_CONNECT.value).sum()
    )
    row["event_count_prev30d"] = len(prev_30)

    count_7, count_30, count_prev = len(last_7), len(last_30), len(prev_30)
    row["decay_ratio_7d_30d"] = count_7 * 30 / (count_30 * 7) if count_30 > 0 else 0.0
    if count_prev > 0:
        row["decay_ratio_30d_prev30d"] = count_30 / count_prev
    else:
        row["decay_ratio_30d_prev30d"] = 0.0 if count_30 == 0 else 1.0

    # The customer's own typical level: the weekly rate over 90 days.
    count_90 = len(last_90)
    row["decay_ratio_7d_90d"] = count_7 * 90 / (count_90 * 7) if count_90 > 0 else 0.0

    # Weekly counts, oldest first: [D-28, D-21), [D-21, D-14), [D-14, D-7), [D-7, D).
    weeks = [len(_in_window(customer_events, day - (k + 1) * 7 * ONE_DAY, day - k * 7 * ONE_DAY))
             for k in (3, 2, 1, 0)]
    row["event_count_14d"] = weeks[2] + weeks[3]
    if sum(weeks) > 0:
        xs = [0, 1, 2, 3]
        x_mean, y_mean = sum(xs) / 4, sum(weeks) / 4
        slope = (sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, weeks))
                 / sum((x - x_mean) ** 2 for x in xs))
        row["event_trend_4w"] = slope / y_mean
    else:
        row["event_trend_4w"] = 0.0

    def advanced_share(window: pd.DataFrame) -> float:
        basic = window["event_type"].isin([EventType.LOGIN.value, EventType.DASHBOARD_VIEW.value])
        return float((~basic).sum()) / len(window)

    if count_7 > 0 and count_90 > 0 and advanced_share(last_90) > 0:
        row["advanced_share_ratio_7d_90d"] = advanced_share(last_7) / advanced_share(last_90)
    else:
        row["advanced_share_ratio_7d_90d"] = math.nan

    row["active_days_30d"] = len({ts.date() for ts in last_30["timestamp"]})

    latest = _latest_before(customer_events, day)
    as_of_30_days_ago = _latest_before(customer_events, day - 30 * ONE_DAY)
    score_latest = _score_of(latest)
    row["adoption_score_latest"] = score_latest
    row["adoption_score_mean_30d"] = (
        float(last_30["feature_adoption_score"].mean()) if count_30 > 0 else math.nan
    )
    row["adoption_score_change_30d"] = score_latest - _score_of(as_of_30_days_ago)

    monitoring_runs = customer_events[
        customer_events["event_type"] == EventType.MONITORING_RUN.value
    ]
    latest_run = _latest_before(monitoring_runs, day)
    # Recency inputs are kept to the second (as Feast's online stores keep timestamps).
    last_event_at = pd.NaT if latest is None else latest["timestamp"].floor("s")
    last_run_at = pd.NaT if latest_run is None else latest_run["timestamp"].floor("s")
    row["last_event_at"] = last_event_at
    row["last_monitoring_run_at"] = last_run_at

    # Request-time features: measured from t, not D.
    row["days_since_last_event"] = math.nan if latest is None else (t - last_event_at) / ONE_DAY
    row["days_since_last_monitoring_run"] = (
        math.nan if latest_run is None else (t - last_run_at) / ONE_DAY
    )
    # Before signup the customer is not knowable yet (point in time): unknown, not negative.
    tenure = (math.nan if signup_at is None or t < signup_at
              else (t - signup_at.floor("s")) / ONE_DAY)
    row["tenure_days"] = tenure
    is_early = (not math.isnan(tenure)) and 0 <= tenure < EARLY_LIFE_DAYS
    row["is_first_90_days"] = bool(is_early)
    row["low_adoption_early_life"] = bool(
        is_early
        and not math.isnan(score_latest)
        and score_latest < LOW_ADOPTION_THRESHOLD
        and row["decay_ratio_7d_30d"] < 1.0
    )
    return row


def _signup_lookup(customers: pd.DataFrame | None) -> dict:
    if customers is None:
        return {}
    if customers["customer_id"].duplicated().any():
        raise ValueError("customers table has duplicate customer_id values")
    return {
        customer_id: (None if pd.isna(signup_at) else _utc(signup_at))
        for customer_id, signup_at in zip(customers["customer_id"], customers["signup_at"])
    }


def brute_force_features(
    events: pd.DataFrame, customers: pd.DataFrame | None, entity_rows: pd.DataFrame
) -> pd.DataFrame:
    """Every churn feature for every entity row, computed the slow, obvious way.

    Returns the entity rows' columns plus one column per feature (:data:`ALL_FEATURES`), in the
    same row order and with the same index as ``entity_rows``.
    """
    events = events.copy()
    timestamps = pd.to_datetime(events["timestamp"])
    if len(timestamps) and timestamps.dt.tz is None:
        raise ValueError("event timestamps must be tz-aware")
    events["timestamp"] = pd.to_datetime(timestamps, utc=True)
    events["event_type"] = events["event_type"].astype(str)
    signups = _signup_lookup(customers)

    rows = []
    for customer_id, event_timestamp in zip(
        entity_rows["customer_id"], entity_rows["event_timestamp"]
    ):
        customer_events = events[events["customer_id"] == customer_id]
        rows.append(
            _features_for_row(customer_events, signups.get(customer_id), _utc(event_timestamp))
        )

    features = pd.DataFrame(rows, columns=ALL_FEATURES, index=entity_rows.index)
    for name in _INT_FEATURES:
        features[name] = features[name].astype("int64")
    for name in _BOOL_FEATURES:
        features[name] = features[name].astype(bool)
    for name in _TIMESTAMP_FEATURES:
        features[name] = pd.to_datetime(features[name], utc=True)
    for name in ALL_FEATURES:
        if name not in _INT_FEATURES + _BOOL_FEATURES + _TIMESTAMP_FEATURES:
            features[name] = features[name].astype("float64")

    result = entity_rows.copy()
    for name in ALL_FEATURES:
        result[name] = features[name]
    return result


def brute_force_psi(reference, current, bins=10):
    """Population stability index with loops: the reference's quantile cuts ("higher" method,
    duplicates merged), each side's share per bin floored at the drift module's epsilon."""
    import math

    from usage_features.monitoring.drift import EPSILON

    finite = sorted(v for v in reference if math.isfinite(v))
    n = len(finite)
    cuts = sorted({finite[math.ceil(k / bins * (n - 1))] for k in range(1, bins)})

    def bin_of(value):
        for i, cut in enumerate(cuts):
            if value <= cut:
                return i
        return len(cuts)

    def share(values):
        kept = [v for v in values if not math.isnan(v)]
        counts = [0] * (len(cuts) + 1)
        for v in kept:
            counts[bin_of(v)] += 1
        return [max(c / len(kept), EPSILON) for c in counts]

    expected, actual = share(reference), share(current)
    return sum((a - e) * math.log(a / e) for a, e in zip(actual, expected))

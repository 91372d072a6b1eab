"""Brute-force oracle of the vocabulary-dependent features of a *declared* vocabulary.

Slow and obvious, like :mod:`tests.reference`, and independent of the production spec: the
vocabulary is plain data here (``{name: role or None}``, the unlisted policy), every feature is
computed from its definition with pandas masks over one customer's raw events.

For an entity row at ``t``, ``D`` is ``t``'s UTC day and a window of N days is ``[D - N, D)``:

* ``<stem>_count_30d``: events of that declared type; ``other_count_30d`` (``unlisted: other``):
  events of any undeclared name;
* ``lock_in_event_count_90d``: events of any lock-in type in 90 days;
* ``advanced_share_ratio_7d_90d``: share of events not of a basic type, 7 days over 90;
* ``days_since_last_core_event``: from the latest event of any core type before D (to the
  second) to ``t``;
* breadth ``b(X)``: the share of declared types with an event in ``[X - 30, X)``;
  ``adoption_score_latest = b(D)``, ``adoption_score_change_30d = b(D) - b(D - 30)``,
  ``adoption_score_mean_30d``: the mean over the events in ``[D - 30, D)`` of ``b(d + 1)``,
  ``d`` the event's own day (the breadth of the 30 days up to and including it).
"""

from __future__ import annotations

import math
import re

import pandas as pd

ONE_DAY = pd.Timedelta(days=1)


def stem(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.strip().lower())


def _window(events: pd.DataFrame, start, end) -> pd.DataFrame:
    return events[(events.timestamp >= start) & (events.timestamp < end)]


def _breadth(events: pd.DataFrame, declared: list[str], at: pd.Timestamp) -> float:
    used = set(_window(events, at - 30 * ONE_DAY, at).event_type) & set(declared)
    return len(used) / len(declared)


def _row(events: pd.DataFrame, types: dict, unlisted: str, t: pd.Timestamp) -> dict:
    declared = list(types)
    day = t.floor("D")
    last_7 = _window(events, day - 7 * ONE_DAY, day)
    last_30 = _window(events, day - 30 * ONE_DAY, day)
    last_90 = _window(events, day - 90 * ONE_DAY, day)
    row = {f"{stem(n)}_count_30d": int((last_30.event_type == n).sum()) for n in declared}
    if unlisted == "other":
        row["other_count_30d"] = int((~last_30.event_type.isin(declared)).sum())
    role = {r: [n for n, rr in types.items() if rr == r] for r in ("core", "lock_in", "basic")}
    if role["lock_in"]:
        row["lock_in_event_count_90d"] = int(last_90.event_type.isin(role["lock_in"]).sum())
    if role["basic"]:
        def share(w):
            return float((~w.event_type.isin(role["basic"])).sum()) / len(w)
        ok = len(last_7) > 0 and len(last_90) > 0 and share(last_90) > 0
        row["advanced_share_ratio_7d_90d"] = share(last_7) / share(last_90) if ok else math.nan
    if role["core"]:
        core = events[events.event_type.isin(role["core"]) & (events.timestamp < day)]
        row["days_since_last_core_event"] = (
            math.nan if core.empty else (t - core.timestamp.max().floor("s")) / ONE_DAY)
    row["adoption_score_latest"] = _breadth(events, declared, day)
    row["adoption_score_change_30d"] = (row["adoption_score_latest"]
                                        - _breadth(events, declared, day - 30 * ONE_DAY))
    event_days = last_30.timestamp.dt.floor("D")
    breadth_on = {d: _breadth(events, declared, d + ONE_DAY) for d in set(event_days)}
    row["adoption_score_mean_30d"] = (
        float(pd.Series([breadth_on[d] for d in event_days]).mean()) if len(last_30)
        else math.nan)
    return row


def brute_force_vocabulary_features(events: pd.DataFrame, types: dict[str, str | None],
                                    unlisted: str, entity_rows: pd.DataFrame) -> pd.DataFrame:
    """The features above for every ``(customer_id, event_timestamp)`` entity row; ``events``
    with normalised (trimmed, lower-cased) ``event_type`` names."""
    events = events.assign(timestamp=pd.to_datetime(events.timestamp, utc=True))
    rows = [_row(events[events.customer_id == c], types, unlisted,
                 pd.Timestamp(t).tz_convert("UTC"))
            for c, t in zip(entity_rows.customer_id, entity_rows.event_timestamp)]
    return pd.DataFrame(rows, index=entity_rows.index)

"""Brute-force point-in-time join (a test oracle for the Feast offline store).

Deliberately slow and obvious, written from Feast's documented semantics and nothing else: for
each entity row ``(keys, t)`` and each feature view, take the view's rows whose keys equal the
entity row's (all of them: a view without entities matches every row) and whose timestamp is at
or before ``t`` and, when the view has a ``ttl`` above zero, at or after ``t - ttl``; the one with
the latest timestamp wins, ties going to the latest created timestamp. No such row: nulls.
Naive timestamps are UTC. The entity rows come back as given, in order, features appended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd


@dataclass
class RefView:
    """A feature view as the oracle sees it: its source rows, as stored, and how to read them."""

    name: str
    rows: pd.DataFrame
    keys: dict[str, str]             # source column (after field mapping) -> entity column
    features: list[str]              # feature names (after field mapping)
    timestamp: str
    created: str | None = None
    ttl: timedelta | None = None
    field_mapping: dict[str, str] = field(default_factory=dict)

    def mapped(self) -> pd.DataFrame:
        return self.rows.rename(columns=self.field_mapping)


def utc(values) -> pd.Series:
    """Timestamps as UTC; naive ones are taken to be UTC already."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return pd.to_datetime(series, utc=True)


def latest_row(view: RefView, rows: pd.DataFrame, entity: pd.Series, t: pd.Timestamp,
               created_cutoff: bool = False):
    """The row of ``rows`` (UTC ``__ts``/``__created`` added) the entity row gets, or None.

    ``created_cutoff`` (Feast's ``filter_by_created_timestamp``): only rows created at or
    before ``t`` are candidates."""
    mask = rows["__ts"] <= t
    if created_cutoff and view.created:
        mask &= rows["__created"] <= t
    if view.ttl is not None and view.ttl > timedelta(0):
        mask &= rows["__ts"] >= t - view.ttl
    for key, column in view.keys.items():
        if pd.isna(entity[column]):
            return None
        mask &= rows[key] == entity[column]
    candidates = rows[mask]
    if candidates.empty:
        return None
    order = ["__ts", "__created"] if view.created else ["__ts"]
    return candidates.sort_values(order, kind="stable").iloc[-1]


def point_in_time_join(entity: pd.DataFrame, views: list[RefView],
                       timestamp_column: str = "event_timestamp",
                       full_feature_names: bool = False,
                       created_cutoff: bool = False) -> pd.DataFrame:
    """``entity`` with every view's features as of each row's timestamp."""
    out = entity.reset_index(drop=True).copy()
    stamps = utc(out[timestamp_column])
    for view in views:
        rows = view.mapped()
        rows["__ts"] = utc(rows[view.timestamp])
        if view.created:
            rows["__created"] = utc(rows[view.created])
        values = {f: [] for f in view.features}
        for i in range(len(out)):
            row = latest_row(view, rows, out.iloc[i], stamps.iloc[i], created_cutoff)
            for f in view.features:
                values[f].append(None if row is None else row[f])
        for f in view.features:
            out[f"{view.name}__{f}" if full_feature_names else f] = pd.Series(values[f],
                                                                            dtype=object)
    return out


def range_entity_rows(views: list[RefView], start, end,
                      timestamp_column: str = "event_timestamp") -> pd.DataFrame:
    """Retrieval without entity rows: every distinct (keys, timestamp) of the views' rows with
    ``start <= timestamp <= end``, ordered by timestamp then keys (views with keys only, unless
    no view has keys)."""
    keyed = [v for v in views if v.keys] or views
    frames = []
    for view in keyed:
        rows = view.mapped()
        stamps = utc(rows[view.timestamp])
        inside = ((stamps >= pd.Timestamp(start)) & (stamps <= pd.Timestamp(end))).values
        frame = rows.loc[inside, list(view.keys)].rename(columns=view.keys)
        frame[timestamp_column] = stamps[inside]
        frames.append(frame)
    keys = [c for c in frames[0].columns if c != timestamp_column]
    rows = pd.concat(frames).drop_duplicates()
    return rows.sort_values([timestamp_column, *keys]).reset_index(drop=True)[
        [*keys, timestamp_column]]

"""One customer's page: the score as ``POST /score`` serves it, how their usage and score have
moved, their feature values against the training medians, their latest events.

The score is :func:`usage_features.service_layer.score.score` without a time, as the HTTP
service answers a request without ``as_of``; the feature values are the online store's, read
at the score's own time, so they are the values the model saw. Weekly events by type come from
the build's daily aggregates (the events the features are built from), the score history from
the daily snapshots, the latest events from the event log. A customer nobody knows, or one who
churned, gets the same page with what there is (never an error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from usage_features.adapters.daily_aggregates import (
    EPOCH,
    customer_rows,
    day_number,
    table_days,
)
from usage_features.adapters.daily_aggregates import latest_events as daily_latest_events
from usage_features.domain.scores import Score
from usage_features.domain.vocabulary import Unlisted
from usage_features.features.retrieval import online_refs, read_online
from usage_features.features.spec import PLAN, SIGNUP_AT
from usage_features.service_layer.pages.data import PageData, file_stamp
from usage_features.service_layer.score import score

WEEKS = 26
LATEST_EVENTS = 15
OTHER = "other"
#: The daily aggregate counting all of a day's events.
EVENTS_COLUMN = "n_events"


@dataclass(frozen=True)
class WeeklyEvents:
    """Events per week (Monday to Sunday, UTC) and event type, the last :data:`WEEKS` weeks."""

    weeks: list[date]  # each week's Monday, oldest first
    types: list[str]  # the event types, in the vocabulary's order
    counts: list[list[int]]  # counts[week][type]
    last_day: date | None = None  # the last day counted (the anchor's)

    @property
    def points(self) -> list[tuple[date, str, int]]:
        """Every (week, type) with events: one mark each on the chart."""
        return [(week, kind, n) for week, row in zip(self.weeks, self.counts)
                for kind, n in zip(self.types, row) if n]

    @property
    def total(self) -> int:
        return sum(sum(row) for row in self.counts)


@dataclass(frozen=True)
class HistoryPoint:
    day: date
    probability: float
    band: str | None


@dataclass(frozen=True)
class FeatureValue:
    """A served feature's value for the customer against its median over the training rows."""

    name: str
    group: str
    description: str
    value: float | None
    median: float | None

    @property
    def relation(self) -> str:
        if self.value is None or self.median is None:
            return ""
        if math.isclose(self.value, self.median, rel_tol=1e-9, abs_tol=1e-12):
            return "at"
        return "above" if self.value > self.median else "below"


@dataclass(frozen=True)
class EventRow:
    timestamp: datetime
    event_type: str
    adoption_score: float | None


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    score: Score
    #: Why the score is not from the online store, and the freshness warnings behind it.
    note: str | None
    warnings: list[str]
    #: From the customers table (None when the customer is not in it).
    in_customers_table: bool
    signup_at: datetime | None
    churned_at: datetime | None
    plan: str | None
    weekly: WeeklyEvents
    history: list[HistoryPoint]
    features: list[FeatureValue] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)


def customer_view(data: PageData, customer_id: str) -> CustomerView:
    """Everything the customer's page shows (see the module docstring)."""
    answer = score(data.context.scorer, [customer_id])
    scored = answer.scores[0]
    customers = data.customers()
    known = customer_id in customers.index
    row = customers.loc[customer_id] if known else None
    churned_at = _time(row, "churned_at")
    latest = scored.latest_event_at or scored.as_of  # the data's own time, not the wall clock
    # a churned customer's usage up to the churn, not the empty weeks since
    anchor = min(latest, churned_at) if churned_at is not None else latest
    columns = type_columns(data)
    with data.duckdb() as con:  # one read of the customer's daily rows serves both
        daily = customer_rows(con, data.context.paths.daily, customer_id,
                              [EVENTS_COLUMN, *columns.values()], 0,
                              day_number(latest.astimezone(UTC).date()))
        weekly = weekly_events(daily, list(columns), anchor)
        events = latest_events(data, con, customer_id, daily, latest)
    return CustomerView(
        customer_id, scored, answer.note, answer.freshness.warnings(), known,
        _time(row, SIGNUP_AT), churned_at,
        row[PLAN] if row is not None and isinstance(row[PLAN], str) else None,
        weekly, score_history(data, customer_id), feature_values(data, customer_id, scored),
        events)


def _time(row, column: str) -> datetime | None:
    if row is None or row[column] is None or row[column] != row[column]:  # None or NaT
        return None
    return row[column].to_pydatetime()


def type_columns(data: PageData) -> dict[str, str]:
    """Each event type's daily count column, in the vocabulary's order."""
    vocabulary = data.spec.vocabulary
    columns = {t.name: f"n_{t.stem}" for t in vocabulary.types}
    if vocabulary.unlisted == Unlisted.OTHER:
        columns[OTHER] = f"n_{OTHER}"
    return {kind: c for kind, c in columns.items() if c in data.spec.daily}


def weekly_events(daily: pd.DataFrame, types: list[str], anchor: datetime) -> WeeklyEvents:
    """Events per week and type over the :data:`WEEKS` weeks up to the week of ``anchor``,
    from the customer's daily aggregates (``day``, the total, then one column per type)."""
    last_day = anchor.astimezone(UTC).date()
    monday = last_day - timedelta(days=last_day.weekday())
    weeks = [monday - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]
    first, last = day_number(weeks[0]), day_number(last_day)
    counts = [[0] * len(types) for _ in weeks]
    window = daily[(daily.day >= first) & (daily.day <= last)]
    for record in window.itertuples(index=False):
        week = (int(record[0]) - first) // 7
        for j, value in enumerate(record[2:]):
            counts[week][j] += int(value)
    return WeeklyEvents(weeks, types, counts, last_day)


def score_history(data: PageData, customer_id: str) -> list[HistoryPoint]:
    """The customer's probability on every snapshot day that scored them, oldest first."""
    return [HistoryPoint(day.day, float(day.probability[row]), day.band[row])
            for day, row in data.snapshots.history(customer_id)]


def feature_values(data: PageData, customer_id: str, scored: Score) -> list[FeatureValue]:
    """The served features the score was computed from (the online store at the score's time)
    beside the model's reference values; none for a customer without a probability."""
    if scored.churn_probability is None or scored.features_from != "online":
        return []
    refs = data.cached("online_refs", id(data.context.store),
                       lambda: online_refs(data.context.store))
    values = read_online(data.context.store, [customer_id], scored.as_of, refs).record(0)
    metadata = data.context.model.metadata
    medians = metadata.reference_values or {}
    described = {f.name: f for f in data.spec.served}
    out = []
    for group, names in data.spec.groups.items():
        for name in names:
            if name not in metadata.features:
                continue
            value = values.get(name)
            out.append(FeatureValue(
                name, str(group), described[name].description,
                None if value is None or value != value else float(value),
                medians.get(name)))
    return out


def latest_events(data: PageData, con, customer_id: str, daily: pd.DataFrame,
                  latest: datetime) -> list[EventRow]:
    """The customer's latest :data:`LATEST_EVENTS` events, newest first. Only the event log's
    partitions that can hold them are read: the days the build's daily aggregates show events
    on (newest first, until they add up to enough), and the days since the build's last
    one (ingested, not built yet), up to ``latest`` (the latest ingested event)."""
    paths = data.context.paths
    key = file_stamp(paths.daily)
    with_events = daily[daily[EVENTS_COLUMN] > 0]
    enough = with_events[EVENTS_COLUMN][::-1].cumsum() < LATEST_EVENTS
    chosen = with_events.day[::-1][enough.shift(fill_value=True)]
    days = {EPOCH + timedelta(days=int(d)) for d in chosen}
    built = data.cached("daily_last_day", key, lambda: table_days(con, paths.daily) or 0)
    last = latest.astimezone(UTC).date()
    day = EPOCH + timedelta(days=built + 1)
    while day <= last:
        days.add(day)
        day += timedelta(days=1)
    events = daily_latest_events(con, paths, customer_id, LATEST_EVENTS, days)
    return [EventRow(timestamp.astimezone(UTC), kind, score)
            for _, _, timestamp, kind, score in events]


__all__ = ["WEEKS", "CustomerView", "EventRow", "FeatureValue", "HistoryPoint", "WeeklyEvents",
           "customer_view"]

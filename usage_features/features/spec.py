"""The churn features, declared once: names, types, descriptions and window semantics.

**Semantics.** For an entity row ``(customer, t)`` let ``D`` be ``t`` truncated to the UTC day.
A window of N days covers the customer's events with timestamp in ``[D - N days, D)``: features
hold from the start of the day, so nothing at or after ``D`` (and so nothing after ``t``) is used,
and a value materialized today equals the historical value for any ``t`` today. The request-time
features (``days_since_*``, tenure) are exact at ``t`` itself.

Each windowed feature is a SQL expression over per-(customer, day) aggregates (``DAILY``) and
named window frames (``Window``); :mod:`usage_features.features.sql` compiles the spec into one
query per engine. The Feast feature views and the ``churn_model_v1`` service are generated from
the lists below, so a feature is added in exactly one place.

Every served feature belongs to one :class:`Group` (what it measures): the training ablation
refits without each group and the scorer's reasons attribute the churn probability to groups,
both derived from the ``group`` declared here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from usage_features.adapters.duckdb_connection import sql_string
from usage_features.domain.value_objects import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD, EventType

Dtype = Literal["int64", "float64", "timestamp", "bool", "string"]


@dataclass(frozen=True)
class Window:
    """Days ``[D - offset - days, D - offset)``; ``days=None`` reaches back to the first event."""

    name: str
    days: int | None
    offset: int = 0

    def frame(self) -> str:
        """The frame over integer day numbers: a day ``d`` holds events in ``[d, d + 1)``."""
        start = "UNBOUNDED" if self.days is None else str(self.days + self.offset)
        return f"RANGE BETWEEN {start} PRECEDING AND {self.offset + 1} PRECEDING"

    def change_offsets(self) -> set[int]:
        """Days after an event's day on which it enters (and leaves) this window."""
        enters = self.offset + 1
        return {enters} if self.days is None else {enters, enters + self.days}


W7 = Window("w7", 7)
W14 = Window("w14", 14)
W21 = Window("w21", 21)
W28 = Window("w28", 28)
W30 = Window("w30", 30)
W90 = Window("w90", 90)
PREV_30 = Window("w_prev30", 30, offset=30)
HISTORY = Window("w_history", None)
HISTORY_30D_AGO = Window("w_history_30d_ago", None, offset=30)
WINDOWS = (W7, W14, W21, W28, W30, W90, PREV_30, HISTORY, HISTORY_30D_AGO)

#: Login and dashboard views: what a customer on the way out keeps doing longest.
_BASIC = f"n_{EventType.LOGIN.value} + n_{EventType.DASHBOARD_VIEW.value}"

#: The type adoption scores are summed in: exact to 18 decimals (a score is in [0, 1]).
EXACT_SCORE = "DECIMAL(38, 18)"

#: Per (customer, UTC day) aggregates of the raw events; ``{event_order}`` is the engine's
#: ordering key (timestamp, then event_id) for "the latest event".
DAILY: dict[str, str] = {
    "n_events": "count(*)",
    **{
        f"n_{t.value}": f"count(CASE WHEN event_type = {sql_string(t.value)} THEN 1 END)"
        for t in EventType
    },
    # Exact (a decimal sum is integer arithmetic): a sum of doubles depends on the order the
    # engine adds them in, which varies between runs and between a full and an incremental
    # build, and a last-bit difference would make the compaction keep or drop a row.
    "score_sum": f"sum(CAST(feature_adoption_score AS {EXACT_SCORE}))",
    "last_score": "max_by(feature_adoption_score, {event_order})",
    # To the second: what Feast's online stores keep of a timestamp, so recency online and
    # offline agree exactly.
    "last_event_at": "date_trunc('second', max(timestamp))",
    "last_monitoring_run_at":
        "date_trunc('second', max(CASE WHEN event_type = "
        f"{sql_string(EventType.MONITORING_RUN.value)} THEN timestamp END))",
}


class Group(StrEnum):
    """What a served feature measures; the value reads in a sentence ("without decay features")."""

    ACTIVITY = "activity"  # how much the customer uses the product, by event type
    RECENCY = "recency"  # how long since the customer last did anything
    DECAY = "decay"  # usage now against usage before
    ADOPTION = "adoption"  # the adoption score, and its early-life signal
    INTEGRATION_MONITORING = "integration/monitoring"  # the product's core job and lock-in
    TENURE = "tenure"  # how long the customer has been one


#: Event types whose counts measure integration and monitoring rather than general activity.
_TYPE_GROUPS = {EventType.MONITORING_RUN: Group.INTEGRATION_MONITORING,
                EventType.INTEGRATION_CONNECT: Group.INTEGRATION_MONITORING}


@dataclass(frozen=True)
class Feature:
    """One output column.

    ``sql`` is a window expression over ``DAILY`` columns, or, when ``derived``, an expression
    over other features. ``stored`` features are columns of the feature table; ``served`` ones
    are in the model's feature service. ``default`` is the value before a customer's first event.
    ``grows_with_time`` marks a feature that rises with the calendar by construction (tenure):
    its distribution drifts from any earlier one even when nothing else changes, so drift
    monitoring reports it without raising an alarm. ``group`` says what a served feature
    measures (every served feature has one).
    """

    name: str
    dtype: Dtype
    sql: str
    description: str
    derived: bool = False
    stored: bool = True
    served: bool = True
    default: float | int | None = None
    grows_with_time: bool = False
    group: Group | None = None

    def __post_init__(self) -> None:
        if self.served and self.group is None:
            raise ValueError(f"served feature {self.name!r} needs a group")


def _count(name: str, column: str, window: Window, what: str,
           group: Group = Group.ACTIVITY) -> Feature:
    return Feature(name, "int64", f"coalesce(sum({column}) OVER {window.name}, 0)",
                   f"{what} in the {window.days} days before the as-of day", default=0,
                   group=group)


def _internal(feature: Feature) -> Feature:
    """An input of derived features only: neither stored nor served."""
    return Feature(feature.name, feature.dtype, feature.sql, feature.description,
                   stored=False, served=False, default=feature.default)


def _latest(column: str, window: Window) -> str:
    return f"max_by({column}, CASE WHEN n_events > 0 THEN day END) OVER {window.name}"


WINDOWED: tuple[Feature, ...] = (
    _count("event_count_7d", "n_events", W7, "Events"),
    _count("event_count_14d", "n_events", W14, "Events", Group.DECAY),
    _internal(_count("event_count_21d", "n_events", W21, "Events")),
    _internal(_count("event_count_28d", "n_events", W28, "Events")),
    _count("event_count_30d", "n_events", W30, "Events"),
    _count("event_count_90d", "n_events", W90, "Events"),
    Feature("event_count_prev30d", "int64", f"coalesce(sum(n_events) OVER {PREV_30.name}, 0)",
            "Events in the 30 days before the last 30 (days 31-60 before the as-of day)",
            default=0, group=Group.DECAY),
    *(_count(f"{t.value}_count_30d", f"n_{t.value}", W30, f"{t.value} events",
             _TYPE_GROUPS.get(t, Group.ACTIVITY)) for t in EventType),
    _count("integration_connect_count_90d", "n_integration_connect", W90,
           "integration_connect events (a retention signal)", Group.INTEGRATION_MONITORING),
    Feature("active_days_30d", "int64",
            f"coalesce(sum(CASE WHEN n_events > 0 THEN 1 ELSE 0 END) OVER {W30.name}, 0)",
            "Distinct UTC days with at least one event in the last 30 days", default=0,
            group=Group.ACTIVITY),
    _internal(_count("basic_count_7d", _BASIC, W7, "login and dashboard_view events")),
    _internal(_count("basic_count_90d", _BASIC, W90, "login and dashboard_view events")),
    Feature("adoption_score_latest", "float64", _latest("last_score", HISTORY),
            "Adoption score of the latest event before the as-of day; null if none",
            group=Group.ADOPTION),
    Feature("adoption_score_30d_ago", "float64", _latest("last_score", HISTORY_30D_AGO),
            "Adoption score as of 30 days before the as-of day", stored=False, served=False),
    Feature("adoption_score_mean_30d", "float64",
            f"CAST(sum(score_sum) OVER {W30.name} AS DOUBLE) "
            f"/ nullif(sum(n_events) OVER {W30.name}, 0)",
            "Mean adoption score of the events in the last 30 days; null if none",
            group=Group.ADOPTION),
    Feature("last_event_at", "timestamp", f"max(last_event_at) OVER {HISTORY.name}",
            "Time (to the second) of the latest event before the as-of day (input to recency)",
            served=False),
    Feature("last_monitoring_run_at", "timestamp",
            f"max(last_monitoring_run_at) OVER {HISTORY.name}",
            "Time (to the second) of the latest monitoring_run before the as-of day",
            served=False),
    # Derived from the columns above.
    Feature("decay_ratio_7d_30d", "float64",
            "CASE WHEN event_count_30d > 0 "
            "THEN CAST(event_count_7d AS DOUBLE) * 30 / (event_count_30d * 7) ELSE 0.0 END",
            "Last 7 days' events vs the weekly rate of the last 30 (1 steady, <1 decaying); "
            "0 with no events in 30 days", derived=True, default=0.0, group=Group.DECAY),
    Feature("decay_ratio_30d_prev30d", "float64",
            "CASE WHEN event_count_prev30d > 0 "
            "THEN CAST(event_count_30d AS DOUBLE) / event_count_prev30d "
            "WHEN event_count_30d > 0 THEN 1.0 ELSE 0.0 END",
            "Last 30 days' events vs the 30 before; 1.0 when only the last 30 have events, "
            "0 when neither has", derived=True, default=0.0, group=Group.DECAY),
    Feature("decay_ratio_7d_90d", "float64",
            "CASE WHEN event_count_90d > 0 "
            "THEN CAST(event_count_7d AS DOUBLE) * 90 / (event_count_90d * 7) ELSE 0.0 END",
            "Last 7 days' events vs the customer's weekly rate over 90 days (its own typical "
            "level); 0 with no events in 90 days", derived=True, default=0.0, group=Group.DECAY),
    Feature("event_trend_4w", "float64",
            "CASE WHEN event_count_28d > 0 "
            "THEN CAST(6 * event_count_7d + 2 * (event_count_14d - event_count_7d) "
            "- 2 * (event_count_21d - event_count_14d) - 6 * (event_count_28d - event_count_21d) "
            "AS DOUBLE) / (5 * event_count_28d) ELSE 0.0 END",
            "Least-squares slope of the last 4 weekly event counts (oldest to newest) over "
            "their mean: the weekly change as a share of the level (-1.2 to 1.2); 0 with no "
            "events in 28 days", derived=True, default=0.0, group=Group.DECAY),
    Feature("advanced_share_ratio_7d_90d", "float64",
            "CASE WHEN event_count_7d > 0 AND event_count_90d > basic_count_90d "
            "THEN (CAST(event_count_7d - basic_count_7d AS DOUBLE) / event_count_7d) "
            "/ (CAST(event_count_90d - basic_count_90d AS DOUBLE) / event_count_90d) END",
            "Share of events beyond login and dashboard_view in the last 7 days vs in the "
            "last 90 (advanced features are dropped first on the way out); null with no "
            "events in 7 days or none beyond those two in 90", derived=True,
            group=Group.DECAY),
    Feature("adoption_score_change_30d", "float64",
            "adoption_score_latest - adoption_score_30d_ago",
            "Adoption score now minus 30 days earlier; null without history on both sides",
            derived=True, group=Group.ADOPTION),
)

#: Computed at request time by an on-demand feature view, exact at ``t``.
REQUEST_TIME: tuple[Feature, ...] = (
    Feature("days_since_last_event", "float64", "", "Days from the latest event to t",
            group=Group.RECENCY),
    Feature("days_since_last_monitoring_run", "float64", "",
            "Days from the latest monitoring_run to t (its absence is an early churn signal)",
            group=Group.INTEGRATION_MONITORING),
    Feature("tenure_days", "float64", "", "Days from signup to t; null for an unknown customer",
            grows_with_time=True, group=Group.TENURE),
    Feature("is_first_90_days", "bool", "", f"Tenure is within the first {EARLY_LIFE_DAYS} days",
            default=False, group=Group.TENURE),
    Feature("low_adoption_early_life", "bool", "",
            f"First {EARLY_LIFE_DAYS} days, adoption below {LOW_ADOPTION_THRESHOLD} and "
            "declining frequency (decay_ratio_7d_30d < 1)", default=False, group=Group.ADOPTION),
)

#: The customer table's columns served as features (churned_at never is: it is the label).
PROFILE: tuple[Feature, ...] = (
    Feature("signup_at", "timestamp", "", "When the customer signed up", served=False),
    Feature("plan", "string", "", "Subscription plan at signup", served=False),
)


def stored_features() -> list[Feature]:
    return [f for f in WINDOWED if f.stored]


def served_features() -> list[Feature]:
    """The model's inputs, in the order the feature service returns them."""
    return [f for f in (*WINDOWED, *REQUEST_TIME) if f.served]


def feature_groups() -> dict[Group, list[str]]:
    """Each group's served features, in served order; groups in declaration order, every group
    with at least one feature."""
    groups: dict[Group, list[str]] = {group: [] for group in Group}
    for feature in served_features():
        groups[feature.group].append(feature.name)
    empty = [group.value for group, names in groups.items() if not names]
    if empty:
        raise ValueError(f"feature group(s) without a served feature: {', '.join(empty)}")
    return groups


def change_offsets() -> list[int]:
    """Days after an event's day on which some feature can change."""
    return sorted(set().union(*(w.change_offsets() for w in WINDOWS)))

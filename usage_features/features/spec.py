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

**The event vocabulary.** The features follow the repo's declared event types
(:mod:`usage_features.domain.vocabulary`): one 30-day count per type, the role features
(core recency, lock-in count, the share beyond basic events) from the types of each role, and
the adoption features from the export's score or from breadth. :func:`feature_spec` builds the
spec of a vocabulary; the module-level names (``WINDOWED``, ``DAILY``, ``served_features()``...)
are the default vocabulary's, whose names and values are the seed product's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Literal

from usage_features.domain.quoting import sql_string
from usage_features.domain.value_objects import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD
from usage_features.domain.vocabulary import (
    Adoption,
    EventVocabulary,
    Role,
    Unlisted,
    VocabularyError,
    default_vocabulary,
)

Dtype = Literal["int64", "float64", "timestamp", "bool", "string"]

# The names of the features code outside this module refers to one by one (the request-time
# features' inputs, the scorer's status, the reasons' wording, the count-only baseline). They
# are declared here, with the features below, and imported from here: a feature's name is
# written nowhere else (tests/unit/test_architecture.py holds the package to it). Names that
# depend on the vocabulary come from :class:`RoleNames`, :func:`type_count_30d` and
# :func:`recency_feature`.
EVENT_COUNT_7D = "event_count_7d"
EVENT_COUNT_30D = "event_count_30d"
EVENT_COUNT_90D = "event_count_90d"
EVENT_COUNT_PREV30D = "event_count_prev30d"
ACTIVE_DAYS_30D = "active_days_30d"
ADOPTION_SCORE_LATEST = "adoption_score_latest"
ADOPTION_SCORE_CHANGE_30D = "adoption_score_change_30d"
DECAY_RATIO_7D_30D = "decay_ratio_7d_30d"
LAST_EVENT_AT = "last_event_at"
TENURE_DAYS = "tenure_days"
IS_FIRST_90_DAYS = "is_first_90_days"
LOW_ADOPTION_EARLY_LIFE = "low_adoption_early_life"
#: The customers table's columns served as (stored, not served) features: see :data:`PROFILE`.
SIGNUP_AT = "signup_at"
PLAN = "plan"


def is_recency_time(name: str) -> bool:
    """A stored ``last_<what>_at`` time: each gives the request-time feature
    ``days_since_last_<what>`` (:func:`recency_feature`)."""
    return name.startswith("last_") and name.endswith("_at")


def recency_feature(last_at: str) -> str:
    """The request-time recency of the stored time ``last_at``: ``last_<what>_at`` ->
    ``days_since_last_<what>``."""
    if not is_recency_time(last_at):
        raise ValueError(f"{last_at!r} is not a last_<what>_at time")
    return f"days_since_{last_at.removesuffix('_at')}"


def type_count_30d(stem: str) -> str:
    """The 30-day count of the event type whose column stem is ``stem``."""
    return f"{stem}_count_30d"


DAYS_SINCE_LAST_EVENT = recency_feature(LAST_EVENT_AT)


@dataclass(frozen=True)
class Window:
    """Days ``[D - offset - days, D - offset)``; ``days=None`` reaches back to the first event."""

    name: str
    days: int | None
    offset: int = 0

    @property
    def enters(self) -> int:
        """Days after an event's day on which the event enters this window."""
        return self.offset + 1

    @property
    def leaves(self) -> int | None:
        """Days after an event's day on which it leaves this window (None: never)."""
        return None if self.days is None else self.enters + self.days

    def change_offsets(self) -> set[int]:
        """Days after an event's day on which it enters (and leaves) this window."""
        return {self.enters} if self.leaves is None else {self.enters, self.leaves}


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
#: Days before the as-of day the bounded windows reach back (90): a customer's features are
#: complete once its history covers them (:func:`usage_features.domain.status.is_incomplete`).
LONGEST_WINDOW_DAYS = max(w.offset + w.days for w in WINDOWS if w.days is not None)


#: The type adoption scores are summed in: exact to 18 decimals (a score is in [0, 1]).
EXACT_SCORE = "DECIMAL(38, 18)"
#: Breadth: how many days an event of a type keeps that type "used" (``[D - 30, D)``).
BREADTH_DAYS = 30
#: The columns breadth adds to the daily rows (see :func:`_adoption`).
BREADTH_COLUMNS = ("breadth_delta", "breadth_weight")


class Group(StrEnum):
    """What a served feature measures; the value reads in a sentence ("without decay features")."""

    ACTIVITY = "activity"  # how much the customer uses the product, by event type
    RECENCY = "recency"  # how long since the customer last did anything
    DECAY = "decay"  # usage now against usage before
    ADOPTION = "adoption"  # the adoption score (or breadth), and its early-life signal
    INTEGRATION_MONITORING = "integration/monitoring"  # the seed's core job and lock-in
    CORE_LOCK_IN = "core/lock-in"  # a declared vocabulary's core and lock-in roles
    TENURE = "tenure"  # how long the customer has been one


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
    #: A per-type count: (its daily column, its window's name); the compiler may sum several
    #: of them in one aggregate (see :mod:`usage_features.features.sql`).
    type_count: tuple[str, str] | None = None

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


def _sum(terms: list[str]) -> str:
    return " + ".join(terms) if terms else "0"


@dataclass(frozen=True)
class RoleNames:
    """How the role features are named: the seed's names on the default vocabulary (its core
    type is ``monitoring_run``, its lock-in type ``integration_connect``), the role's own on
    any declared one (``days_since_last_core_event``, ``lock_in_event_count_90d``)."""

    core: str  # ``last_<core>_at``, ``days_since_last_<core>``
    lock_in: str  # ``<lock_in>_count_90d``
    group: Group

    @property
    def last_core_at(self) -> str:
        """The stored time of the latest core event."""
        return f"last_{self.core}_at"

    @property
    def days_since_core(self) -> str:
        """The request-time days since the latest core event."""
        return recency_feature(self.last_core_at)

    @property
    def lock_in_count_90d(self) -> str:
        """The 90-day count of the lock-in events."""
        return f"{self.lock_in}_count_90d"

    @staticmethod
    def of(vocabulary: EventVocabulary) -> RoleNames:
        if vocabulary.declared:
            return RoleNames("core_event", "lock_in_event", Group.CORE_LOCK_IN)
        return RoleNames("monitoring_run", "integration_connect", Group.INTEGRATION_MONITORING)


@dataclass(frozen=True)
class FeatureSpec:
    """Every feature of one event vocabulary: the daily aggregates, the windowed and derived
    features, the request-time ones, and what each measures."""

    vocabulary: EventVocabulary
    daily: dict[str, str]
    #: Breadth adoption: the daily columns of the declared types (empty with a score).
    breadth_counts: tuple[str, ...]
    windowed: tuple[Feature, ...]
    request_time: tuple[Feature, ...]
    roles: RoleNames

    @cached_property
    def stored(self) -> list[Feature]:
        return [f for f in self.windowed if f.stored]

    @cached_property
    def served(self) -> list[Feature]:
        """The model's inputs, in the order the feature service returns them."""
        return [f for f in (*self.windowed, *self.request_time) if f.served]

    @cached_property
    def served_names(self) -> list[str]:
        return [f.name for f in self.served]

    @cached_property
    def groups(self) -> dict[Group, list[str]]:
        """Each group's served features, in served order; groups in declaration order, only
        groups with a feature (a role no type has drops its group)."""
        groups: dict[Group, list[str]] = {group: [] for group in Group}
        for feature in self.served:
            groups[feature.group].append(feature.name)
        return {group: names for group, names in groups.items() if names}

    @property
    def timeline_columns(self) -> list[str]:
        """The daily columns the window features read."""
        return [*self.daily, *(BREADTH_COLUMNS if self.breadth_counts else ())]


def _daily(vocabulary: EventVocabulary, roles: RoleNames) -> dict[str, str]:
    """Per (customer, UTC day) aggregates of the raw events; ``{event_order}`` is the engine's
    ordering key (timestamp, then event_id) for "the latest event"."""
    declared = ", ".join(sql_string(name) for name in vocabulary.names)
    daily = {"n_events": "count(*)"}
    daily.update({f"n_{t.stem}": f"count(CASE WHEN event_type = {sql_string(t.name)} THEN 1 END)"
                  for t in vocabulary.types})
    if vocabulary.unlisted == Unlisted.OTHER:
        daily["n_other"] = f"count(CASE WHEN event_type NOT IN ({declared}) THEN 1 END)"
    if vocabulary.adoption == Adoption.SCORE:
        # Exact (a decimal sum is integer arithmetic): a sum of doubles depends on the order
        # the engine adds them in, which varies between runs and between a full and an
        # incremental build, and a last-bit difference would make the compaction keep or drop
        # a row.
        daily["score_sum"] = f"sum(CAST(feature_adoption_score AS {EXACT_SCORE}))"
        daily["last_score"] = "max_by(feature_adoption_score, {event_order})"
    # To the second: what Feast's online stores keep of a timestamp, so recency online and
    # offline agree exactly.
    daily[LAST_EVENT_AT] = "date_trunc('second', max(timestamp))"
    core = vocabulary.of_role(Role.CORE)
    if core:
        names = ", ".join(sql_string(t.name) for t in core)
        daily[roles.last_core_at] = (f"date_trunc('second', max(CASE WHEN event_type IN "
                                     f"({names}) THEN timestamp END))")
    return daily


def _adoption(vocabulary: EventVocabulary, stems: list[str]
              ) -> tuple[list[Feature], list[Feature]]:
    """(base features, derived features) of the adoption group.

    Breadth reads two columns the feature query adds (:func:`features_sql`): ``breadth_delta``,
    +1 on the day a declared type's run of use starts and -1 thirty days after its last day,
    so that its running sum over the days before D is the number of types used in
    ``[D - 30, D)``; and ``breadth_weight``, a day's events times the types used in the 30 days
    up to and including that day."""
    if vocabulary.adoption == Adoption.SCORE:
        return [
            Feature(ADOPTION_SCORE_LATEST, "float64", _latest("last_score", HISTORY),
                    "Adoption score of the latest event before the as-of day; null if none",
                    group=Group.ADOPTION),
            Feature("adoption_score_30d_ago", "float64", _latest("last_score", HISTORY_30D_AGO),
                    "Adoption score as of 30 days before the as-of day", stored=False,
                    served=False),
            Feature("adoption_score_mean_30d", "float64",
                    f"CAST(sum(score_sum) OVER {W30.name} AS DOUBLE) "
                    f"/ nullif(sum(n_events) OVER {W30.name}, 0)",
                    "Mean adoption score of the events in the last 30 days; null if none",
                    group=Group.ADOPTION),
        ], [Feature(ADOPTION_SCORE_CHANGE_30D, "float64",
                    "adoption_score_latest - adoption_score_30d_ago",
                    "Adoption score now minus 30 days earlier; null without history on both "
                    "sides", derived=True, group=Group.ADOPTION)]
    n = len(stems)
    latest = f"CAST(coalesce(sum(breadth_delta) OVER {{}}, 0) AS DOUBLE) / {n}"
    return [
        Feature(ADOPTION_SCORE_LATEST, "float64", latest.format(HISTORY.name),
                "Breadth: the share of the declared event types with an event in the 30 days "
                "before the as-of day", default=0.0, group=Group.ADOPTION),
        Feature("adoption_score_30d_ago", "float64", latest.format(HISTORY_30D_AGO.name),
                "Breadth as of 30 days before the as-of day", stored=False, served=False,
                default=0.0),
        Feature("adoption_score_mean_30d", "float64",
                f"CAST(sum(breadth_weight) OVER {W30.name} AS DOUBLE) "
                f"/ ({n} * nullif(sum(n_events) OVER {W30.name}, 0))",
                "Breadth: the mean, over the events of the last 30 days, of the share of the "
                "declared event types used in the 30 days up to each event's day; null if none",
                group=Group.ADOPTION),
    ], [Feature(ADOPTION_SCORE_CHANGE_30D, "float64",
                "adoption_score_latest - adoption_score_30d_ago",
                "Breadth now minus breadth 30 days earlier", derived=True, default=0.0,
                group=Group.ADOPTION)]


def _build(vocabulary: EventVocabulary) -> FeatureSpec:
    roles = RoleNames.of(vocabulary)
    role_group = roles.group
    stems = [t.stem for t in vocabulary.types]
    per_type = [(t.stem, t.name, role_group if t.role in (Role.CORE, Role.LOCK_IN)
                 else Group.ACTIVITY) for t in vocabulary.types]
    if vocabulary.unlisted == Unlisted.OTHER:
        per_type.append(("other", "undeclared", Group.ACTIVITY))
    lock_in = [f"n_{t.stem}" for t in vocabulary.of_role(Role.LOCK_IN)]
    basic = [f"n_{t.stem}" for t in vocabulary.of_role(Role.BASIC)]
    core = vocabulary.of_role(Role.CORE)
    basic_names = " and ".join(t.name for t in vocabulary.of_role(Role.BASIC))
    adoption_base, adoption_derived = _adoption(vocabulary, stems)
    basic_sum = _sum(basic)
    windowed = [
        _count(EVENT_COUNT_7D, "n_events", W7, "Events"),
        _count("event_count_14d", "n_events", W14, "Events", Group.DECAY),
        _internal(_count("event_count_21d", "n_events", W21, "Events")),
        _internal(_count("event_count_28d", "n_events", W28, "Events")),
        _count(EVENT_COUNT_30D, "n_events", W30, "Events"),
        _count(EVENT_COUNT_90D, "n_events", W90, "Events"),
        Feature(EVENT_COUNT_PREV30D, "int64",
                f"coalesce(sum(n_events) OVER {PREV_30.name}, 0)",
                "Events in the 30 days before the last 30 (days 31-60 before the as-of day)",
                default=0, group=Group.DECAY),
        *(replace(_count(type_count_30d(stem), f"n_{stem}", W30, f"{name} events", group),
                  type_count=(f"n_{stem}", W30.name)) for stem, name, group in per_type),
    ]
    if lock_in:
        what = " and ".join(t.name for t in vocabulary.of_role(Role.LOCK_IN))
        windowed.append(_count(roles.lock_in_count_90d, _sum(lock_in), W90,
                               f"{what} events (a retention signal)", role_group))
    windowed.append(Feature(
        ACTIVE_DAYS_30D, "int64",
        f"coalesce(sum(CASE WHEN n_events > 0 THEN 1 ELSE 0 END) OVER {W30.name}, 0)",
        "Distinct UTC days with at least one event in the last 30 days", default=0,
        group=Group.ACTIVITY))
    if basic:
        windowed += [_internal(_count("basic_count_7d", basic_sum, W7, f"{basic_names} events")),
                     _internal(_count("basic_count_90d", basic_sum, W90,
                                      f"{basic_names} events"))]
    windowed += adoption_base
    windowed.append(Feature(LAST_EVENT_AT, "timestamp", f"max({LAST_EVENT_AT}) OVER {HISTORY.name}",
                            "Time (to the second) of the latest event before the as-of day "
                            "(input to recency)", served=False))
    if core:
        what = " or ".join(t.name for t in core)
        windowed.append(Feature(
            roles.last_core_at, "timestamp",
            f"max({roles.last_core_at}) OVER {HISTORY.name}",
            f"Time (to the second) of the latest {what} before the as-of day", served=False))
    windowed += [
        # Derived from the columns above.
        Feature(DECAY_RATIO_7D_30D, "float64",
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
                "Last 7 days' events vs the customer's weekly rate over 90 days (its own "
                "typical level); 0 with no events in 90 days", derived=True, default=0.0,
                group=Group.DECAY),
        Feature("event_trend_4w", "float64",
                "CASE WHEN event_count_28d > 0 "
                "THEN CAST(6 * event_count_7d + 2 * (event_count_14d - event_count_7d) "
                "- 2 * (event_count_21d - event_count_14d) "
                "- 6 * (event_count_28d - event_count_21d) "
                "AS DOUBLE) / (5 * event_count_28d) ELSE 0.0 END",
                "Least-squares slope of the last 4 weekly event counts (oldest to newest) over "
                "their mean: the weekly change as a share of the level (-1.2 to 1.2); 0 with no "
                "events in 28 days", derived=True, default=0.0, group=Group.DECAY),
    ]
    if basic:
        windowed.append(Feature(
            "advanced_share_ratio_7d_90d", "float64",
            "CASE WHEN event_count_7d > 0 AND event_count_90d > basic_count_90d "
            "THEN (CAST(event_count_7d - basic_count_7d AS DOUBLE) / event_count_7d) "
            "/ (CAST(event_count_90d - basic_count_90d AS DOUBLE) / event_count_90d) END",
            f"Share of events beyond {basic_names} in the last 7 days vs in the "
            "last 90 (advanced features are dropped first on the way out); null with no "
            f"events in 7 days or none beyond {basic_names} in 90", derived=True,
            group=Group.DECAY))
    windowed += adoption_derived
    request_time = [Feature(DAYS_SINCE_LAST_EVENT, "float64", "",
                            "Days from the latest event to t", group=Group.RECENCY)]
    if core:
        what = " or ".join(t.name for t in core)
        request_time.append(Feature(
            roles.days_since_core, "float64", "",
            f"Days from the latest {what} to t (its absence is an early churn signal)",
            group=role_group))
    adoption = ("breadth" if vocabulary.adoption == Adoption.BREADTH else "adoption")
    request_time += [
        Feature(TENURE_DAYS, "float64", "", "Days from signup to t; null for an unknown "
                "customer", grows_with_time=True, group=Group.TENURE),
        Feature(IS_FIRST_90_DAYS, "bool", "",
                f"Tenure is within the first {EARLY_LIFE_DAYS} days", default=False,
                group=Group.TENURE),
        Feature(LOW_ADOPTION_EARLY_LIFE, "bool", "",
                f"First {EARLY_LIFE_DAYS} days, {adoption} below {LOW_ADOPTION_THRESHOLD} and "
                "declining frequency (decay_ratio_7d_30d < 1)", default=False,
                group=Group.ADOPTION),
    ]
    breadth = tuple(f"n_{s}" for s in stems) if vocabulary.adoption == Adoption.BREADTH else ()
    spec = FeatureSpec(vocabulary, _daily(vocabulary, roles), breadth, tuple(windowed),
                       tuple(request_time), roles)
    _check_names(spec)
    return spec


def _check_names(spec: FeatureSpec) -> None:
    """Every feature and daily column name once: a declared type whose column meets a built-in
    one is an error naming both."""
    features = [*(f.name for f in (*spec.windowed, *spec.request_time, *PROFILE)),
                "customer_id", "day", "feature_timestamp", "event_timestamp"]
    made_by = {name: t.name for t in spec.vocabulary.types
               for name in (f"n_{t.stem}", f"{t.stem}_count_30d", f"{t.stem}_count_prev30d")}
    for columns in (spec.timeline_columns, features):
        for name, count in Counter(columns).items():
            if count > 1:
                raise VocabularyError(
                    f"event type {made_by.get(name, '?')!r} makes the column {name!r}, which "
                    "is also a built-in feature or column; rename the event type")


@lru_cache(maxsize=32)
def feature_spec(vocabulary: EventVocabulary | None = None) -> FeatureSpec:
    """The features of ``vocabulary`` (default: the seed's :class:`EventType`)."""
    return _build(vocabulary or default_vocabulary())


#: The customer table's columns served as features (churned_at never is: it is the label).
PROFILE: tuple[Feature, ...] = (
    Feature(SIGNUP_AT, "timestamp", "", "When the customer signed up", served=False),
    Feature(PLAN, "string", "", "Subscription plan at signup", served=False),
)

_DEFAULT = feature_spec()
#: The default vocabulary's features (see :func:`feature_spec` for any other).
DAILY = _DEFAULT.daily
WINDOWED = _DEFAULT.windowed
REQUEST_TIME = _DEFAULT.request_time


def stored_features(spec: FeatureSpec | None = None) -> list[Feature]:
    return (spec or _DEFAULT).stored


def served_features(spec: FeatureSpec | None = None) -> list[Feature]:
    """The model's inputs, in the order the feature service returns them."""
    return (spec or _DEFAULT).served


def feature_groups(spec: FeatureSpec | None = None) -> dict[Group, list[str]]:
    """Each group's served features, in served order (groups without one left out)."""
    return (spec or _DEFAULT).groups


def change_offsets() -> list[int]:
    """Days after an event's day on which some feature can change."""
    return sorted(set().union(*(w.change_offsets() for w in WINDOWS)))

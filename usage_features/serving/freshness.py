"""How fresh the data behind an answer is: latest event ingested, last build, last materialize.

Where each time is recorded:

- the latest event: the event log itself (its newest ``event_date=`` partition);
- the day the event history starts (:func:`history_start`): the settings' ``complete_from``,
  else the log's oldest partition;
- the last build: the feature tables' files (a build that changes nothing writes nothing), and
  ``_build_state.json`` for the event-log files the tables fold in;
- the last materialize: Feast's registry (each online view's ``most_recent_end_time``, what
  ``feast materialize`` also updates) for how far the online store reaches, and
  ``_build_state.json`` (``materialized``) for when ``usage-features materialize`` last ran and
  ``unmaterialized_since`` for builds it has not loaded yet.

The online store answers for one UTC day: the day of its materialize end (feature rows change
only at day starts, see docs/features.md). :func:`online_day_problem` says when
it cannot answer for a time; :meth:`Freshness.warnings` says when an answer may be stale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from usage_features.adapters.event_log import EventLog
from usage_features.adapters.stored_files import stored_files
from usage_features.config import RepoPaths
from usage_features.features.state import load_state
from usage_features.features.store import DEFAULT_CONFIG, open_store
from usage_features.ingestion.settings import load_settings

#: Default for how far the latest event may lie before the scoring time without a warning.
DEFAULT_MAX_LAG_HOURS = 36.0
LAG_VARIABLE = "USAGE_FEATURES_MAX_LAG_HOURS"


def max_event_lag(hours: float | None = None) -> timedelta:
    """``hours``, else ``$USAGE_FEATURES_MAX_LAG_HOURS``, else 36 hours."""
    if hours is None:
        hours = float(os.environ.get(LAG_VARIABLE) or DEFAULT_MAX_LAG_HOURS)
    if not hours > 0:
        raise ValueError(f"the maximum event lag must be a positive number of hours, got {hours}")
    return timedelta(hours=hours)


def day_start(moment: datetime) -> datetime:
    """``moment`` truncated to its UTC day (D in the feature semantics)."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def latest_event_at(paths: RepoPaths) -> datetime | None:
    """The latest event timestamp in the event log (:meth:`EventLog.latest_event_at`)."""
    return EventLog(paths).latest_event_at()


def history_start(paths: RepoPaths) -> date | None:
    """The UTC day from which the event log holds every event: the settings' ``events:
    complete_from``, else the log's first day (None: no events, no declaration)."""
    return load_settings(paths.repo).complete_from or EventLog(paths).first_day()


def day_seconds(day: date | None) -> float:
    """Epoch seconds of ``day``'s start (UTC); NaN for None."""
    return float("nan") if day is None else datetime(day.year, day.month, day.day,
                                                       tzinfo=UTC).timestamp()


def days_past_data(end: datetime, latest_event: datetime | None) -> int:
    """How many whole days ``end``'s UTC day lies past the day after the latest event's (0: the
    data describes that day; more: its features assume days of no activity nobody has seen)."""
    if latest_event is None:
        return 0
    return max(0, (day_start(end) - day_start(latest_event)).days - 1)


@dataclass(frozen=True)
class Freshness:
    """The times behind an answer at ``as_of`` and what they imply (see :meth:`warnings`)."""

    as_of: datetime
    max_lag: timedelta
    latest_event_at: datetime | None = None
    last_build_at: datetime | None = None
    unbuilt_event_files: int = 0
    materialized_through: datetime | None = None
    last_materialize_at: datetime | None = None
    unmaterialized_since: date | None = None
    online: bool = True  # whether the answer comes from the online store
    history_from: date | None = None  # :func:`history_start`
    extra: list[str] = field(default_factory=list)

    @property
    def event_lag(self) -> timedelta | None:
        return None if self.latest_event_at is None else self.as_of - self.latest_event_at

    @property
    def materialized_day(self) -> date | None:
        through = self.materialized_through
        return None if through is None else day_start(through).date()

    def warnings(self) -> list[str]:
        """What makes an answer at ``as_of`` possibly stale, in plain words (empty: fresh)."""
        found = []
        if self.latest_event_at is None:
            found.append("no events have been ingested")
        elif self.event_lag > self.max_lag:
            found.append(
                f"the latest ingested event ({self.latest_event_at:%Y-%m-%d %H:%M} UTC) is "
                f"{self.event_lag.total_seconds() / 3600:.0f} h before "
                f"{self.as_of:%Y-%m-%d %H:%M} UTC, more than the allowed "
                f"{self.max_lag.total_seconds() / 3600:g} h: the answer assumes no activity "
                "since (ingest the latest events)")
        if self.unbuilt_event_files:
            found.append(f"{self.unbuilt_event_files} ingested event file(s) are not in the "
                         "feature tables yet: run `usage-features build`")
        if self.online:
            day = day_start(self.as_of).date()
            if self.materialized_through is None:
                found.append("the online store was never materialized: run "
                             "`usage-features materialize`")
            elif self.materialized_day < day:
                found.append(f"the online store holds the features of {self.materialized_day}, "
                             f"not of {day}: run `usage-features materialize`")
            if (self.unmaterialized_since is not None and self.materialized_day is not None
                    and self.unmaterialized_since <= self.materialized_day):
                found.append(f"a build changed features from {self.unmaterialized_since} on "
                             "since the last materialize: run `usage-features materialize`")
        return found + list(self.extra)

    def to_dict(self) -> dict:
        def iso(value):
            return None if value is None else value.isoformat()

        return {
            "as_of": iso(self.as_of),
            "latest_event_at": iso(self.latest_event_at),
            "last_build_at": iso(self.last_build_at),
            "unbuilt_event_files": self.unbuilt_event_files,
            "materialized_through": iso(self.materialized_through) if self.online else None,
            "last_materialize_at": iso(self.last_materialize_at) if self.online else None,
            "max_lag_hours": self.max_lag.total_seconds() / 3600,
            "warnings": self.warnings(),
        }


@stored_files
def freshness(repo, as_of: datetime | None = None, config: str = DEFAULT_CONFIG, store=None,
              max_lag: timedelta | None = None, online: bool = True) -> Freshness:
    """The :class:`Freshness` of the repo's data for an answer at ``as_of`` (default now).

    ``online``: the answer comes from the online store of ``config`` (``store``, opened if not
    given), so its materialize times count; ``False`` for historical reads (``predict``).
    """
    paths = RepoPaths(repo)
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    state = load_state(paths)
    logged = {str(p.relative_to(paths.events)) for p in EventLog(paths).files()}
    tables = [*paths.customer_usage.glob("*.parquet"), paths.customer_profile]
    stamps = [p.stat().st_mtime for p in tables if p.exists()]
    record = Freshness(
        as_of=as_of, max_lag=max_lag or max_event_lag(),
        latest_event_at=latest_event_at(paths),
        last_build_at=datetime.fromtimestamp(max(stamps), UTC) if stamps else None,
        unbuilt_event_files=len(logged - set(state.get("event_files", []))),
        online=online, history_from=history_start(paths))
    if not online:
        return record
    ran = state.get("materialized", {}).get(config, {}).get("at")
    pending = state.get("unmaterialized_since", {}).get(config)
    return replace(
        record, materialized_through=materialized_through(store or _open(repo, config)),
        last_materialize_at=datetime.fromisoformat(ran) if ran else None,
        unmaterialized_since=date.fromisoformat(pending) if pending else None)


def materialized_through(store) -> datetime | None:
    """How far the online store reaches: the earliest materialize end of its online views
    (Feast's registry, read afresh); None if any view was never materialized."""
    ends = [v.most_recent_end_time for v in store.list_feature_views(allow_cache=False)
            if v.online]
    if not ends or any(e is None for e in ends):
        return None
    return min(e if e.tzinfo else e.replace(tzinfo=UTC) for e in ends).astimezone(
        UTC)


def online_day_problem(record: Freshness, as_of: datetime) -> str | None:
    """Why the online store cannot give the features at ``as_of`` (None: it can, exactly).

    It holds each customer's latest feature row at or before its materialize end; those rows
    are the features at ``as_of`` exactly when ``as_of`` falls on the same UTC day (rows change
    only at day starts) and no build has changed them since.
    """
    if record.materialized_through is None:
        return "the online store was never materialized (run `usage-features materialize`)"
    day, held = day_start(as_of).date(), record.materialized_day
    if day != held:
        return (f"{as_of.isoformat()} is not on the online store's day ({held}, materialized "
                f"through {record.materialized_through.isoformat()}): the online features are "
                f"{held}'s, not {day}'s")
    if record.unmaterialized_since is not None and record.unmaterialized_since <= held:
        return (f"a build changed features from {record.unmaterialized_since} on since the last "
                "materialize (run `usage-features materialize`)")
    return None


def _open(repo, config: str):
    return open_store(Path(repo), config)

"""Materialize the feature tables into the online store, incrementally and exactly.

Feast's ``materialize-incremental`` starts each view where the previous run ended (the first
run at ``now - ttl``, 52 weeks back for ``ttl=0``), which misses rows older than that and rows a
rebuild rewrote in the past (late events). This command starts at the earlier of the last end
and the first day any build changed since then (the epoch on the first run), so the online store
always holds each customer's latest row at or before ``end``.

``end`` may not reach past now: the online store would hold a day that has not happened (rows
of customers' windows emptying in the future), and scoring now would read it. It is clamped to
now with a warning. An end more than a day past the latest ingested event is loaded, with a
warning: the online store then holds that day's features (equal to ``predict``'s there), which
assume no activity since the latest event. An end before the online store's current one is
refused: the store would mix two days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from usage_features.adapters.event_log import EventLog
from usage_features.adapters.feast.bulk_materialize import materialize_in_bulk
from usage_features.adapters.feast.online import create_online_tables, missing_online_tables
from usage_features.adapters.stored_files import stored_files
from usage_features.config import RepoPaths
from usage_features.features.state import load_state, save_state
from usage_features.features.store import DEFAULT_CONFIG, open_store
from usage_features.serving.freshness import days_past_data, latest_event_at

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MaterializeError(ValueError):
    """The requested materialization would make the online store wrong."""


@dataclass
class MaterializeSummary:
    start: datetime
    end: datetime
    views: list[str]
    #: Why ``end`` is earlier than asked for, or past the data (None: neither).
    warning: str | None = None


@stored_files
def materialize(repo, end: datetime | None = None, config: str = DEFAULT_CONFIG,
                now: datetime | None = None, full: bool = False) -> MaterializeSummary:
    """Load each customer's latest feature row at or before ``end`` (default now).

    ``now`` is the wall clock (a parameter for tests); ``end`` is clamped to it with a
    warning, and warned of when past the data (see the module docstring). ``full``: from the
    first row on, rewriting every customer's row (``verify --repair`` of a damaged store).
    """
    paths = RepoPaths(repo)
    now = now or datetime.now(UTC)
    requested = (end or now).astimezone(UTC)
    with EventLog(paths).write_lock():  # no build rewrites the tables meanwhile
        end, warnings = min(requested, now), []
        if requested > now:
            warnings.append(f"end {requested.isoformat()} is later than the data allows (now); "
                            f"materialized up to now, {end.isoformat()}")
        latest = latest_event_at(paths)
        past = days_past_data(end, latest)
        if past:
            warnings.append(f"end {end.isoformat()} is {past} day(s) past the day after the "
                            f"latest ingested event ({latest.isoformat()}): the online store "
                            "holds features that assume no activity since (ingest the latest "
                            "events)")
        store = open_store(repo, config)
        views = [v for v in store.list_feature_views() if v.online]
        ends = [v.most_recent_end_time for v in views]
        start = EPOCH if any(e is None for e in ends) else min(ends)
        if end < start:
            raise MaterializeError(
                f"end {end.isoformat()} is before the online store's current end "
                f"{start.isoformat()}: it would hold rows of two different days; materialize "
                "to a later time (or into a fresh online store)")
        missing = missing_online_tables(store, views)
        if missing:  # dropped (or never created): recreate and refill from the start
            create_online_tables(store, [v for v in views if v.name in missing])
            start = EPOCH
        pending = _pending_change(paths, config)
        if pending is not None:
            start = min(start, pending)
        if full:
            start = EPOCH
        if not materialize_in_bulk(store, views, start, end):
            store.materialize(start, end, feature_views=[v.name for v in views])
        _record(paths, config, end, now)
    return MaterializeSummary(start, end, [v.name for v in views], "; ".join(warnings) or None)


def _pending_change(paths: RepoPaths, config: str) -> datetime | None:
    day = load_state(paths).get("unmaterialized_since", {}).get(config)
    return datetime.fromisoformat(day).replace(tzinfo=UTC) if day else None


def _record(paths: RepoPaths, config: str, end: datetime, now: datetime) -> None:
    """The pending build change is loaded; note when this ran and up to when (freshness)."""
    state = load_state(paths)
    state.get("unmaterialized_since", {}).pop(config, None)
    state.setdefault("materialized", {})[config] = {"end": end.isoformat(),
                                                    "at": now.isoformat()}
    save_state(paths, state)

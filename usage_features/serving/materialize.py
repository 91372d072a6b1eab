"""Materialize the feature tables into the online store, incrementally and exactly.

Feast's ``materialize-incremental`` starts each view where the previous run ended (the first
run at ``now - ttl``, 52 weeks back for ``ttl=0``), which misses rows older than that and rows a
rebuild rewrote in the past (late events). This command starts at the earlier of the last end
and the first day any build changed since then (the epoch on the first run), so the online store
always holds each customer's latest row at or before ``end``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.features.state import load_state, save_state
from usage_features.features.store import (
    DEFAULT_CONFIG,
    create_online_tables,
    missing_online_tables,
    open_store,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class MaterializeSummary:
    start: datetime
    end: datetime
    views: list[str]


def materialize(repo, end: datetime | None = None, config: str = DEFAULT_CONFIG
                ) -> MaterializeSummary:
    paths = RepoPaths(repo)
    end = end or datetime.now(timezone.utc)
    with EventLog(paths).write_lock():  # no build rewrites the tables meanwhile
        store = open_store(repo, config)
        views = [v for v in store.list_feature_views() if v.online]
        ends = [v.most_recent_end_time for v in views]
        start = EPOCH if any(e is None for e in ends) else min(ends)
        missing = missing_online_tables(store, views)
        if missing:  # dropped (or never created): recreate and refill from the start
            create_online_tables(store, [v for v in views if v.name in missing])
            start = EPOCH
        pending = _pending_change(paths, config)
        if pending is not None:
            start = min(start, pending)
        store.materialize(start, end, feature_views=[v.name for v in views])
        _clear_pending_change(paths, config)
    return MaterializeSummary(start, end, [v.name for v in views])


def _pending_change(paths: RepoPaths, config: str) -> datetime | None:
    day = load_state(paths).get("unmaterialized_since", {}).get(config)
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc) if day else None


def _clear_pending_change(paths: RepoPaths, config: str) -> None:
    state = load_state(paths)
    if state.get("unmaterialized_since", {}).pop(config, None) is not None:
        save_state(paths, state)

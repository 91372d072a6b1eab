"""The feature build's small persistent state (``_build_state.json``).

``event_files``: the event-log files folded into the tables; ``customers_mtime_ns``: the
customers table the profile was built from; ``unmaterialized_since``: per online-store config
file, the earliest feature day a build changed since the last ``usage-features materialize``
into that store; ``materialized``: per config file, when it last ran and up to when;
``files`` (:data:`~usage_features.adapters.feature_tables.RECORDS`): the checksums of every file
the build wrote under ``data/features/``.

The state carries its own SHA-256 (:func:`~usage_features.adapters.checksums.read_checked_json`):
a state changed, truncated or written by an earlier version raises
:class:`~usage_features.adapters.checksums.DamagedFileError` when loaded, and the next build
rebuilds every table from the event log.
"""

from __future__ import annotations

from usage_features.adapters.checksums import (
    DamagedFileError,
    read_checked_json,
    write_checked_json,
)
from usage_features.config import RepoPaths


def load_state(paths: RepoPaths) -> dict:
    """The state (an empty one before the first build); raises ``DamagedFileError``."""
    if paths.build_state.exists():
        return read_checked_json(paths.build_state)
    return {"event_files": []}


def save_state(paths: RepoPaths, state: dict) -> None:
    """Write ``state`` atomically; an unchanged state is not rewritten."""
    try:
        if load_state(paths) == state:
            return
    except DamagedFileError:
        pass
    paths.build_state.parent.mkdir(parents=True, exist_ok=True)
    write_checked_json(paths.build_state, state)

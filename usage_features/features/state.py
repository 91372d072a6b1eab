"""The feature build's small persistent state (``_build_state.json``).

``event_files``: the event-log files folded into the tables; ``customers_mtime_ns``: the
customers table the profile was built from; ``unmaterialized_since``: per online-store config
file, the earliest feature day a build changed since the last ``usage-features materialize``
into that store.
"""

from __future__ import annotations

import json

from usage_features.adapters.files import atomic_write
from usage_features.config import RepoPaths


def load_state(paths: RepoPaths) -> dict:
    if paths.build_state.exists():
        return json.loads(paths.build_state.read_text())
    return {"event_files": []}


def save_state(paths: RepoPaths, state: dict) -> None:
    """Write ``state`` atomically; an unchanged state is not rewritten."""
    if load_state(paths) == state:
        return
    paths.build_state.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.build_state, json.dumps(state, indent=1))

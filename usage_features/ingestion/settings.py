"""A repo's ingestion settings: column mappings and limits, from ``DIR/usage_features.yaml``.

The file is optional; every key in it is optional::

    events:
      columns:                    # source column: event column (`ingest --map SRC=DEST`)
        occurred_at: timestamp
        account_id: customer_id
      types:                      # the event vocabulary (default: the seed's EventType)
        create_opportunity: {role: core}
        search: {}
      unlisted: reject            # or other
      adoption: breadth           # or score (the feature_adoption_score column)
      key: [session_id]           # without an event_id column: more columns of an event's id
      complete_from: 2025-03-01   # every event from this UTC day on is in the log (default:
                                  # the log's first day); customers who signed up before it
                                  # are scored from it + 90 days on (the longest window)
    customers:
      columns:                    # source column: customers column (`load-customers --map`)
        account_id: customer_id
    limits:
      earliest_timestamp: 1970-01-01T00:00:00Z   # older times are implausible (a date: 00:00 UTC)
      max_future_hours: 24                        # later than now + this is in the future
      max_customer_id_length: 256                 # characters, after trimming
    capacity: 5%                  # customers the team contacts per scoring date (or a count)
    horizons: [60, 90]            # longer horizons (days) scored beside the 30-day one

``--map`` flags override the stored mapping: a flag replaces every stored entry with the same
source or the same target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from usage_features.config import MAX_FUTURE_SKEW_HOURS
from usage_features.domain.capacity import DEFAULT_CAPACITY, Capacity, CapacityError
from usage_features.domain.scores import DEFAULT_HORIZONS
from usage_features.domain.vocabulary import (
    EventVocabulary,
    VocabularyError,
    default_vocabulary,
    parse_vocabulary,
)
from usage_features.features.spec import feature_spec

SETTINGS_FILE = "usage_features.yaml"
DEFAULT_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_MAX_FUTURE = timedelta(hours=MAX_FUTURE_SKEW_HOURS)
DEFAULT_MAX_CUSTOMER_ID_LENGTH = 256


class SettingsError(ValueError):
    """The stored settings or a ``--map`` flag cannot be used (the message says why)."""


@dataclass(frozen=True)
class Limits:
    """What a plausible row looks like; anything outside is quarantined with its reason."""

    earliest_timestamp: datetime = DEFAULT_EARLIEST
    max_future: timedelta = DEFAULT_MAX_FUTURE
    max_customer_id_length: int = DEFAULT_MAX_CUSTOMER_ID_LENGTH


@dataclass(frozen=True)
class IngestSettings:
    limits: Limits = field(default_factory=Limits)
    event_columns: dict[str, str] = field(default_factory=dict)
    customer_columns: dict[str, str] = field(default_factory=dict)
    vocabulary: EventVocabulary = field(default_factory=default_vocabulary)
    #: Columns of the input that, with customer, time and type, identify an event without an id.
    event_key: tuple[str, ...] = ()
    #: Customers the team can contact per scoring date (precision at capacity's K).
    capacity: Capacity = DEFAULT_CAPACITY
    #: The longer horizons, in days, ``train`` gives churn probabilities for ([] for none).
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    complete_from: date | None = None


def settings_path(repo: Path) -> Path:
    return Path(repo) / SETTINGS_FILE


def load_settings(repo: Path) -> IngestSettings:
    """The settings stored in ``repo`` (defaults when there is no file)."""
    path = settings_path(repo)
    if not path.is_file():
        return IngestSettings()
    raw = read_settings_file(path)
    unknown = set(raw) - {"events", "customers", "limits", "capacity", "horizons"}
    if unknown:
        raise SettingsError(f"{path}: unknown section(s): {', '.join(sorted(unknown))}")
    events = raw.get("events") or {}
    if not isinstance(events, dict):
        raise SettingsError(f"{path}: events must be a mapping")
    unknown = set(events) - {"columns", "types", "unlisted", "adoption", "key", "complete_from"}
    if unknown:
        raise SettingsError(f"{path}: unknown events key(s): {', '.join(sorted(unknown))}")
    return IngestSettings(
        limits=_limits(path, raw.get("limits") or {}),
        event_columns=_columns(path, events, "events"),
        customer_columns=_columns(path, raw.get("customers") or {}, "customers"),
        vocabulary=_vocabulary(path, events),
        event_key=_key(path, events.get("key")),
        capacity=_capacity(path, raw.get("capacity")),
        horizons=_horizons(path, raw["horizons"]) if "horizons" in raw else DEFAULT_HORIZONS,
        complete_from=_day(path, events.get("complete_from"), "events.complete_from"),
    )


def _day(path: Path, raw, name: str) -> date | None:
    """A day as YAML reads one (unquoted) or as an ISO string; never a date-time."""
    if isinstance(raw, str):
        with suppress(ValueError):
            raw = date.fromisoformat(raw)
    if raw is None or (isinstance(raw, date) and not isinstance(raw, datetime)):
        return raw
    raise SettingsError(f"{path}: {name} must be a UTC day, e.g. 2025-03-01, got {raw!r}")


def _horizons(path: Path, raw) -> tuple[int, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in raw):
        raise SettingsError(f"{path}: horizons must be a list of whole numbers of days "
                            f"(e.g. [60, 90]), got {raw!r}")
    return tuple(sorted(set(raw)))


def _capacity(path: Path, raw) -> Capacity:
    if raw is None:
        return DEFAULT_CAPACITY
    try:
        return Capacity.parse(raw)
    except CapacityError as exc:
        raise SettingsError(f"{path}: {exc}") from None


def read_settings_file(path: Path) -> dict:
    """The file as YAML reads it (``{}`` when absent)."""
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a mapping at the top level")
    return raw


def load_vocabulary(repo: Path) -> EventVocabulary:
    """The repo's event vocabulary (the default when its settings declare none)."""
    return load_settings(repo).vocabulary


def _vocabulary(path: Path, events: dict) -> EventVocabulary:
    """The declared vocabulary, checked against the features it makes (a type whose feature
    name meets a built-in one is an error here, when the file is read)."""
    try:
        vocabulary = parse_vocabulary(events.get("types"), events.get("unlisted"),
                                      events.get("adoption"))
        feature_spec(vocabulary)
    except VocabularyError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    return vocabulary


def _key(path: Path, key) -> tuple[str, ...]:
    if key is None:
        return ()
    if not isinstance(key, list) or not all(isinstance(k, str) and k for k in key):
        raise SettingsError(f"{path}: events.key must be a list of column names")
    return tuple(key)


def _columns(path: Path, section: dict, name: str) -> dict[str, str]:
    columns = section.get("columns") or {} if isinstance(section, dict) else None
    if not isinstance(columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
        raise SettingsError(f"{path}: {name}.columns must map source column names to "
                            "column names")
    return dict(columns)


def _limits(path: Path, raw: dict) -> Limits:
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: limits must be a mapping")
    unknown = set(raw) - {"earliest_timestamp", "max_future_hours", "max_customer_id_length"}
    if unknown:
        raise SettingsError(f"{path}: unknown limit(s): {', '.join(sorted(unknown))}")
    earliest = raw.get("earliest_timestamp", DEFAULT_EARLIEST)
    if isinstance(earliest, date) and not isinstance(earliest, datetime):
        earliest = datetime(earliest.year, earliest.month, earliest.day, tzinfo=UTC)
    if isinstance(earliest, str):
        try:
            earliest = datetime.fromisoformat(earliest)
        except ValueError:
            raise SettingsError(f"{path}: earliest_timestamp {earliest!r} is not an ISO-8601 "
                                "date-time") from None
    if not isinstance(earliest, datetime) or earliest.utcoffset() is None:
        raise SettingsError(f"{path}: earliest_timestamp must be a date-time with a UTC "
                            "offset, e.g. 1970-01-01T00:00:00Z")
    hours = raw.get("max_future_hours", DEFAULT_MAX_FUTURE.total_seconds() / 3600)
    length = raw.get("max_customer_id_length", DEFAULT_MAX_CUSTOMER_ID_LENGTH)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
        raise SettingsError(f"{path}: max_future_hours must be a number >= 0")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise SettingsError(f"{path}: max_customer_id_length must be a positive integer")
    return Limits(earliest.astimezone(UTC), timedelta(hours=hours), length)


def parse_map_flags(flags: Iterable[str]) -> dict[str, str]:
    """``["SRC=DEST", ...]`` as ``{SRC: DEST}``; a malformed or repeated source is an error."""
    mapping: dict[str, str] = {}
    for flag in flags:
        source, sep, target = flag.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise SettingsError(f"--map {flag!r}: expected SRC=DEST, e.g. "
                                "--map occurred_at=timestamp")
        if source in mapping:
            raise SettingsError(f"--map: column {source!r} is mapped twice")
        mapping[source] = target
    return mapping


def merge_mappings(stored: Mapping[str, str], flags: Mapping[str, str]) -> dict[str, str]:
    """The stored mapping overridden by the flags (same source or same target: the flag wins)."""
    overridden = set(flags) | set(flags.values())
    kept = {s: t for s, t in stored.items() if s not in overridden and t not in overridden}
    return {**kept, **flags}


def check_mapping(mapping: Mapping[str, str], targets: Iterable[str]) -> dict[str, str]:
    """``mapping`` if every target is one of ``targets`` and no two sources share a target."""
    targets = tuple(targets)
    unknown = sorted({t for t in mapping.values() if t not in targets})
    if unknown:
        raise SettingsError(f"column mapping: unknown target column(s) {', '.join(unknown)}; "
                            f"expected one of: {', '.join(targets)}")
    seen: dict[str, str] = {}
    for source, target in mapping.items():
        if target in seen:
            raise SettingsError(f"column mapping: {seen[target]!r} and {source!r} are both "
                                f"mapped to {target!r}")
        seen[target] = source
    return dict(mapping)

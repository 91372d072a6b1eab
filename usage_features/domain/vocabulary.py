"""The event vocabulary: a product's own event names, and the role each plays.

A repo declares it in ``usage_features.yaml`` (``events.types``); without a declaration it is
the seed's :class:`~usage_features.domain.value_objects.EventType` (:func:`default_vocabulary`).
Roles say what a type means for churn, so the features and the reasons can speak of it:

* ``core``: the product doing its core job (its absence is an early churn signal);
* ``lock_in``: switching costs (a retention signal);
* ``basic``: what a leaving customer keeps doing longest (signing in, looking around).

Any number of types may share a role and count together; a role no type has produces no
feature. Names are compared after trimming and lower-casing. The vocabulary is identified by
:attr:`EventVocabulary.sha256`: features, the feature service and a trained model all follow
from it, so a change of vocabulary is a schema change.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum

from usage_features.domain.value_objects import EventType

#: Characters a feature name may hold; every other one of an event name becomes ``_``.
_NOT_IN_NAME = re.compile(r"[^a-z0-9_]")
#: Type names the features reserve: ``events`` (``n_events``, the daily total) and ``other``
#: (every undeclared name, under ``unlisted: other``).
RESERVED_NAMES = ("events", "other")


class VocabularyError(ValueError):
    """A vocabulary that cannot be used (the message names the offending entries)."""


class Role(StrEnum):
    CORE = "core"
    LOCK_IN = "lock_in"
    BASIC = "basic"


class Unlisted(StrEnum):
    """What happens to an event name the vocabulary does not declare."""

    REJECT = "reject"  # quarantined as unknown_event_type
    OTHER = "other"  # kept, counted under one "other" type


class Adoption(StrEnum):
    """Where the adoption features come from."""

    SCORE = "score"  # the export's feature_adoption_score column, a snapshot per event
    BREADTH = "breadth"  # the share of declared types the customer used in 30 days


def normalise_event_name(name: str) -> str:
    """An event name as compared and stored: trimmed and lower-cased."""
    return name.strip().lower()


def feature_stem(name: str) -> str:
    """The part of a feature name taken from an event name: ``[a-z0-9_]`` only."""
    return _NOT_IN_NAME.sub("_", normalise_event_name(name))


@dataclass(frozen=True)
class DeclaredType:
    name: str
    role: Role | None = None

    @property
    def stem(self) -> str:
        return feature_stem(self.name)


@dataclass(frozen=True)
class EventVocabulary:
    """The declared event types (in declaration order), the unlisted policy, the adoption
    source. ``declared`` is False for the default (nothing declared in the repo)."""

    types: tuple[DeclaredType, ...]
    unlisted: Unlisted = Unlisted.REJECT
    adoption: Adoption = Adoption.SCORE
    declared: bool = True

    def __post_init__(self) -> None:
        if not self.types:
            raise VocabularyError("the event vocabulary declares no event type")
        stems: dict[str, str] = {}
        for t in self.types:
            if not t.name or t.name != normalise_event_name(t.name):
                raise VocabularyError(f"event type {t.name!r}: declare it trimmed and "
                                      "lower-cased (names are matched that way)")
            if t.stem in RESERVED_NAMES:
                raise VocabularyError(f"event type {t.name!r}: the name {t.stem!r} is reserved "
                                      f"({', '.join(RESERVED_NAMES)}); rename it in the export "
                                      "or leave it undeclared")
            if t.stem[0].isdigit():
                raise VocabularyError(f"event type {t.name!r}: a feature name cannot start "
                                      f"with a digit ({t.stem}_count_30d)")
            if t.stem in stems:
                raise VocabularyError(f"event types {stems[t.stem]!r} and {t.name!r} make the "
                                      f"same feature name ({t.stem}_count_30d)")
            stems[t.stem] = t.name

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)

    def of_role(self, role: Role) -> tuple[DeclaredType, ...]:
        return tuple(t for t in self.types if t.role == role)

    def to_dict(self) -> dict:
        """The vocabulary as plain data (recorded with a model; :func:`from_dict` reads it)."""
        return {"types": {t.name: ({"role": t.role.value} if t.role else {}) for t in self.types},
                "unlisted": self.unlisted.value, "adoption": self.adoption.value,
                "declared": self.declared}

    @property
    def sha256(self) -> str:
        """Identity of everything that shapes the features (order of types included)."""
        canonical = json.dumps(self.to_dict(), sort_keys=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


#: The seed product's roles: monitoring runs are its core job, integrations lock in.
_DEFAULT_ROLES = {EventType.MONITORING_RUN: Role.CORE, EventType.INTEGRATION_CONNECT: Role.LOCK_IN,
                  EventType.LOGIN: Role.BASIC, EventType.DASHBOARD_VIEW: Role.BASIC}


def default_vocabulary() -> EventVocabulary:
    """The seed's :class:`EventType`, with its adoption score: a repo that declares nothing."""
    return EventVocabulary(tuple(DeclaredType(t.value, _DEFAULT_ROLES.get(t)) for t in EventType),
                           Unlisted.REJECT, Adoption.SCORE, declared=False)


def from_dict(raw: dict | None) -> EventVocabulary:
    """A vocabulary from :meth:`EventVocabulary.to_dict` (None: the default)."""
    if raw is None or not raw.get("declared", True):
        return default_vocabulary()
    return parse_vocabulary(raw.get("types"), raw.get("unlisted"), raw.get("adoption"))


def parse_vocabulary(types, unlisted=None, adoption=None) -> EventVocabulary:
    """A vocabulary from the ``events`` section's ``types``, ``unlisted`` and ``adoption``
    entries as YAML reads them; every problem is a :class:`VocabularyError` naming the entry."""
    if types is None:
        if unlisted not in (None, Unlisted.REJECT.value) or adoption not in (
                None, Adoption.SCORE.value):
            raise VocabularyError("events.unlisted and events.adoption need events.types "
                                  "(the default vocabulary rejects unlisted names and reads "
                                  "the adoption score)")
        return default_vocabulary()
    if not isinstance(types, dict) or not types:
        raise VocabularyError("events.types must map each event name to {} or {role: ROLE}")
    declared: list[DeclaredType] = []
    seen: dict[str, str] = {}
    for raw_name, entry in types.items():
        name = normalise_event_name(str(raw_name))
        if not name:
            raise VocabularyError("events.types: an event name is empty")
        if name in seen:
            raise VocabularyError(f"events.types: {seen[name]!r} and {raw_name!r} are the same "
                                  "name once trimmed and lower-cased")
        seen[name] = str(raw_name)
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - {"role"}:
            raise VocabularyError(f"events.types.{raw_name}: expected {{}} or {{role: ROLE}}")
        role = entry.get("role")
        if role is not None and role not in Role.__members__.values():
            raise VocabularyError(f"events.types.{raw_name}: unknown role {role!r}; expected "
                                  f"one of: {', '.join(r.value for r in Role)}")
        declared.append(DeclaredType(name, Role(role) if role else None))
    return EventVocabulary(tuple(declared),
                           _choice(Unlisted, "unlisted", unlisted, Unlisted.REJECT),
                           _choice(Adoption, "adoption", adoption, Adoption.BREADTH))


def _choice(kind, key: str, value, default):
    if value is None:
        return default
    if value not in kind.__members__.values():
        raise VocabularyError(f"events.{key}: {value!r} is not one of: "
                              f"{', '.join(v.value for v in kind)}")
    return kind(value)

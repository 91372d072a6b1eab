"""Why a customer scores as they do: the model's own attribution to each feature group.

For each customer and each feature :class:`~usage_features.features.spec.Group`, the model
scores the customer once more with that group's features set to reference values (each
feature's median over the training rows, stored with the model). The difference, the customer's
probability minus that one, is how much the group's values raise this customer's churn
probability. The groups that raise it by at least :data:`MIN_RAISE`, largest first, are the
reasons (at most :data:`LIMIT`); a group whose values lower it is never one. Each reason is worded
from :data:`TEMPLATES` with the customer's own feature values, the numbers the model saw.

All rows, the customers and each customer with each group at reference, go to the model in one
batch (:meth:`GroupReasons.score`). A model saved without reference values (trained before
they were recorded) scores as before and gives no reasons, with a
:class:`ReasonsUnavailableWarning` when loaded.
"""

from __future__ import annotations

import math
import string
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from usage_features.domain.value_objects import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD
from usage_features.domain.vocabulary import Adoption, Role
from usage_features.features.spec import (
    ACTIVE_DAYS_30D,
    ADOPTION_SCORE_CHANGE_30D,
    ADOPTION_SCORE_LATEST,
    DAYS_SINCE_LAST_EVENT,
    EVENT_COUNT_7D,
    EVENT_COUNT_30D,
    EVENT_COUNT_90D,
    EVENT_COUNT_PREV30D,
    LOW_ADOPTION_EARLY_LIFE,
    TENURE_DAYS,
    FeatureSpec,
    Group,
    feature_spec,
    type_count_30d,
)

#: At most this many reasons per customer.
LIMIT = 3
#: A group raising the probability by less than this (0.1 percentage point) is not stated.
MIN_RAISE = 0.001


class Template:
    """A reason's wording: each ``str.format`` field of ``text`` is a keyword of ``features``,
    which names (with the spec's names) the served feature whose value for the customer fills
    it.

    It applies when every feature it names has a known value for the customer and, with
    ``when``, that (boolean) feature is true.
    """

    def __init__(self, text: str, when: str | None = None, **features: str) -> None:
        placeholders = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        if placeholders != set(features):
            raise ValueError(f"template {text!r} has fields {sorted(placeholders)} but names "
                             f"features for {sorted(features)}")
        self.text, self.when, self.features = text, when, dict(features)

    @property
    def fields(self) -> tuple[str, ...]:
        """The served features it shows."""
        return tuple(self.features.values())

    def format(self, values: Mapping[str, float]) -> str:
        return self.text.format(**{field: values[name] for field, name in self.features.items()})

    def __repr__(self) -> str:
        return f"Template({self.text!r}, when={self.when!r}, features={self.features!r})"


def _integration_monitoring(spec: FeatureSpec) -> tuple[Template, ...]:
    """The seed vocabulary's core (``monitoring_run``) and lock-in (``integration_connect``)
    wording."""
    (core,) = spec.vocabulary.of_role(Role.CORE)
    connects = spec.roles.lock_in_count_90d
    return (
        Template("monitoring runs in the last 30 days: {runs:.0f} (the latest {days:.0f} days "
                 "ago); integrations connected in 90 days: {connects:.0f}",
                 runs=type_count_30d(core.stem), days=spec.roles.days_since_core,
                 connects=connects),
        Template("never ran a monitoring_run; integrations connected in 90 days: "
                 "{connects:.0f}", connects=connects),
    )


#: Each group's wordings, the first that applies is used (the last always applies); the
#: adoption and role groups' depend on the vocabulary (:func:`templates`).
TEMPLATES: dict[Group, tuple[Template, ...]] = {
    Group.ACTIVITY: (
        Template("active on {days:.0f} of the last 30 days, {events:.0f} events in 90 days",
                 days=ACTIVE_DAYS_30D, events=EVENT_COUNT_90D),
    ),
    Group.RECENCY: (
        Template("last active {days:.0f} days ago", days=DAYS_SINCE_LAST_EVENT),
        Template("no activity recorded"),
    ),
    Group.DECAY: (
        Template("{last_30:.0f} events in the last 30 days against {previous_30:.0f} in the 30 "
                 "before ({last_7:.0f} in the last 7)", last_30=EVENT_COUNT_30D,
                 previous_30=EVENT_COUNT_PREV30D, last_7=EVENT_COUNT_7D),
    ),
    Group.ADOPTION: (
        Template(f"adoption score {{score:.2f}}, below {LOW_ADOPTION_THRESHOLD}, with usage "
                 f"slowing in the first {EARLY_LIFE_DAYS} days ({{tenure:.0f}} since signup)",
                 when=LOW_ADOPTION_EARLY_LIFE, score=ADOPTION_SCORE_LATEST, tenure=TENURE_DAYS),
        Template("adoption score {score:.2f}, {change:+.2f} over 30 days",
                 score=ADOPTION_SCORE_LATEST, change=ADOPTION_SCORE_CHANGE_30D),
        Template("adoption score {score:.2f}", score=ADOPTION_SCORE_LATEST),
        Template("no adoption score yet"),
    ),
    Group.INTEGRATION_MONITORING: _integration_monitoring(feature_spec()),
    Group.TENURE: (
        Template("{tenure:.0f} days since signup", tenure=TENURE_DAYS),
        Template("signup date unknown"),
    ),
}

#: Breadth's wording (a vocabulary without an adoption score).
_BREADTH = (
    Template(f"used {{breadth:.0%}} of the product's event types in 30 days, below "
             f"{LOW_ADOPTION_THRESHOLD:.0%}, with usage slowing in the first {EARLY_LIFE_DAYS} "
             "days ({tenure:.0f} since signup)",
             when=LOW_ADOPTION_EARLY_LIFE, breadth=ADOPTION_SCORE_LATEST, tenure=TENURE_DAYS),
    Template("used {breadth:.0%} of the product's event types in 30 days, a change of "
             "{change:+.0%} of them over 30 days",
             breadth=ADOPTION_SCORE_LATEST, change=ADOPTION_SCORE_CHANGE_30D),
)


def _core_lock_in(spec: FeatureSpec) -> tuple[Template, ...]:
    """A declared vocabulary's core and lock-in wording, of the roles it has."""
    vocabulary = spec.vocabulary
    core = " or ".join(t.name for t in vocabulary.of_role(Role.CORE))
    lock_in = " or ".join(t.name for t in vocabulary.of_role(Role.LOCK_IN))
    tail, counts = "", {}
    if lock_in:
        tail = f"; {_braces(lock_in)} events in 90 days: {{lock_in:.0f}}"
        counts = {"lock_in": spec.roles.lock_in_count_90d}
    if not core:
        return (Template(tail[2:], **counts),)
    return (Template(f"the latest {_braces(core)} {{days:.0f}} days ago" + tail,
                     days=spec.roles.days_since_core, **counts),
            Template(f"never did {_braces(core)}" + tail, **counts))


def _braces(text: str) -> str:
    """``text`` (a declared event type's name) as literal text of a template."""
    return text.replace("{", "{{").replace("}", "}}")


def templates(spec: FeatureSpec) -> dict[Group, tuple[Template, ...]]:
    """Each of ``spec``'s groups' wordings."""
    out = dict(TEMPLATES)
    if spec.vocabulary.adoption == Adoption.BREADTH:
        out[Group.ADOPTION] = _BREADTH
    if spec.roles.group == Group.CORE_LOCK_IN:
        out[Group.CORE_LOCK_IN] = _core_lock_in(spec)
    return {group: out[group] for group in spec.groups}


def render(group: Group, values: Mapping[str, float],
           wordings: Mapping[Group, tuple[Template, ...]] = TEMPLATES) -> str:
    """The group's first applicable wording, filled in with ``values`` (NaN: unknown)."""
    for template in wordings[group]:
        if template.when is not None and not _true(values.get(template.when)):
            continue
        if all(_known(values.get(name)) for name in template.fields):
            return template.format(values)
    return f"{group.value} features"  # unreachable while each group's last template applies


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _true(value: float | None) -> bool:
    return _known(value) and bool(value)


@dataclass(frozen=True)
class Reason:
    """One group's share of a customer's churn probability, in words."""

    group: Group
    #: The customer's probability minus the probability with the group at reference values.
    raises_by: float
    text: str


class ReasonsUnavailableWarning(UserWarning):
    """The model carries no reference values: its scores come without reasons."""


class GroupReasons:
    """Scores and per-group reasons for rows of a model's features (columns ``features``).

    ``reference`` maps each feature to the value a group's features are set to when the group
    is neutralised (the training rows' medians); ``None`` (a model saved before they were
    recorded) gives scores without reasons.
    """

    def __init__(self, features: Sequence[str], reference: Mapping[str, float] | None,
                 limit: int = LIMIT, min_raise: float = MIN_RAISE,
                 spec: FeatureSpec | None = None):
        self.features = list(features)
        self.limit, self.min_raise = limit, min_raise
        spec = spec or feature_spec()
        self.wordings = templates(spec)
        column = {name: i for i, name in enumerate(self.features)}
        groups = {group: [column[n] for n in names if n in column]
                  for group, names in spec.groups.items()}
        ungrouped = set(self.features) - {n for names in spec.groups.values() for n in names}
        if ungrouped:
            raise ValueError(f"feature(s) in no feature group: {sorted(ungrouped)}")
        self.groups = [group for group, columns in groups.items() if columns]
        self._columns = [np.array(groups[group], dtype=np.intp) for group in self.groups]
        self.reference: np.ndarray | None = None
        if reference is not None:
            missing = [f for f in self.features if not _known(reference.get(f))]
            if missing:
                raise ValueError(f"the model's reference values lack feature(s): {missing}")
            self.reference = np.array([float(reference[f]) for f in self.features])

    @property
    def available(self) -> bool:
        return self.reference is not None

    def neutralised(self, matrix: np.ndarray) -> np.ndarray:
        """``matrix`` followed by one copy per group with that group's columns at reference:
        ``(1 + groups) * rows`` rows, block ``g + 1`` for ``self.groups[g]``."""
        blocks = np.repeat(matrix[None], 1 + len(self.groups), axis=0)
        for block, columns in zip(blocks[1:], self._columns):
            block[:, columns] = self.reference[columns]
        return blocks.reshape(-1, matrix.shape[1])

    def score(self, predict: Callable[[np.ndarray], np.ndarray], matrix: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities ``(rows,)`` and each group's raise ``(rows, groups)`` (None without
        reference values), from one ``predict`` call."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if not len(matrix):
            return np.zeros(0), None
        if self.reference is None:
            return predict(matrix), None
        out = predict(self.neutralised(matrix))
        rows = len(matrix)
        probabilities = out[:rows]
        return probabilities, probabilities[:, None] - out[rows:].reshape(-1, rows).T

    def explain(self, matrix: np.ndarray, raises: np.ndarray | None) -> list[list[Reason]]:
        """Each row's reasons: the groups raising its probability most (ties in group order),
        at most ``limit``. ``matrix`` and ``raises`` as given to and by :meth:`score`."""
        if raises is None:
            return [[] for _ in range(len(matrix))]
        order = np.argsort(-raises, axis=1, kind="stable")[:, :self.limit]
        top = np.take_along_axis(raises, order, axis=1)
        out: list[list[Reason]] = []
        for i, (groups, amounts) in enumerate(zip(order.tolist(), top.tolist())):
            if not amounts or amounts[0] < self.min_raise:
                out.append([])
                continue
            named = dict(zip(self.features, matrix[i].tolist()))
            out.append([Reason(self.groups[g], amount,
                               render(self.groups[g], named, self.wordings))
                        for g, amount in zip(groups, amounts) if amount >= self.min_raise])
        return out

    def reasons(self, values: np.ndarray, raises: np.ndarray | None) -> list[Reason]:
        """One customer's reasons (:meth:`explain` of one row)."""
        return self.explain(np.asarray(values)[None],
                            None if raises is None else np.asarray(raises)[None])[0]

    def warn_if_unavailable(self, model_version: str) -> None:
        if self.reference is None:
            warnings.warn(ReasonsUnavailableWarning(
                f"model {model_version} has no reference values (saved before reasons came "
                "from the model): its scores come without reasons; retrain it "
                "(`usage-features train`) to get them"), stacklevel=3)


def groups_table(spec: FeatureSpec | None = None) -> str:
    """The feature groups as a Markdown table (group, features), for docs/scoring.md."""
    lines = ["| group | served features |", "|---|---|"]
    lines += [f"| {group.value} | {', '.join(f'`{n}`' for n in names)} |"
              for group, names in (spec or feature_spec()).groups.items()]
    return "\n".join(lines)

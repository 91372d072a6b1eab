"""A churn score, the one shape every answer takes, and the port scores leave through.

The same :class:`Score` is the CLI's JSON line, the HTTP answer's item, a snapshot's row and a
PostgreSQL row (``docs/scoring.md`` lists its fields). A probability is given only to an
``active`` customer; every other status says why there is none.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime

#: Where the features behind a score were read.
ONLINE = "online"  # the online store (its materialize day)
HISTORICAL = "historical"  # Feast's point-in-time historical path (any time)


@dataclass(frozen=True)
class Score:
    """A customer's churn risk at ``as_of``, or why none can be given."""

    customer_id: str
    as_of: datetime
    #: ``active`` (scored), ``churned``, ``incomplete``, ``unknown`` or ``invalid`` (no
    #: probability).
    status: str
    model_version: str
    churn_probability: float | None = None
    risk_band: str | None = None
    reasons: tuple[str, ...] = ()
    #: :data:`ONLINE` or :data:`HISTORICAL`.
    features_from: str = ONLINE
    #: The data's freshness: the latest ingested event, and whether the answer is fresh
    #: (no freshness warning at ``as_of``).
    latest_event_at: datetime | None = None
    fresh: bool = True
    #: For a churned customer: when.
    churned_at: datetime | None = None
    #: Why there is no probability, in words (unknown and invalid rows).
    error: str | None = None
    #: ``(days, probability)`` for each longer horizon, ascending, each probability at least
    #: the shorter ones' (None where not scored, or by a model without that horizon): the
    #: fields ``churn_probability_<days>d``.
    horizon_probabilities: tuple[tuple[int, float | None], ...] = ()
    #: The median of the customer's time-to-churn curve, in days from ``as_of``; None where
    #: the curve stays above one half, where it contradicts a probability beside it (a
    #: horizon's probability is at least one half exactly when the median is within it), or
    #: not scored.
    expected_days_to_churn: float | None = None

    def row(self) -> dict:
        """The score's columns (:func:`score_columns`) and values; reasons a list."""
        out = {name: getattr(self, name) for name in SCORE_FIELDS}
        out["reasons"] = list(self.reasons)
        if not self.horizon_probabilities:
            return out
        horizons = {horizon_field(days): p for days, p in self.horizon_probabilities}
        return {column: (horizons[column] if column in horizons else out[column])
                for column in score_columns(days for days, _ in self.horizon_probabilities)}

    def to_dict(self) -> dict:
        """JSON-ready: times in ISO 8601, reasons a list, a field per horizon."""
        return {key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in self.row().items()}


#: The longer horizons (days) scored beside the classifier's by default (``horizons:`` in
#: ``usage_features.yaml``).
DEFAULT_HORIZONS = (60, 90)


def horizon_field(days: int) -> str:
    """The field of the churn probability within ``days`` (``churn_probability_60d``)."""
    return f"churn_probability_{int(days)}d"


#: A score's field names, in order, without the horizons' (see :func:`score_columns`).
SCORE_FIELDS = tuple(f.name for f in fields(Score) if f.name != "horizon_probabilities")


def score_columns(horizons: Iterable[int] = ()) -> tuple[str, ...]:
    """The snapshot's and the PostgreSQL table's columns for scores with ``horizons``: each
    horizon's probability right after ``churn_probability``."""
    return _score_columns(tuple(sorted(set(horizons))))


@functools.lru_cache(maxsize=64)
def _score_columns(horizons: tuple[int, ...]) -> tuple[str, ...]:
    # once per set of horizons, not once per score's row (74,000 a day at 10^5 customers)
    at = SCORE_FIELDS.index("churn_probability") + 1
    return SCORE_FIELDS[:at] + tuple(horizon_field(days) for days in horizons) \
        + SCORE_FIELDS[at:]


def scores_horizons(scores: Iterable[Score]) -> tuple[int, ...]:
    """Every horizon any of ``scores`` has a field for, ascending."""
    return tuple(sorted({days for s in scores for days, _ in s.horizon_probabilities}))


class ScoreSink(abc.ABC):
    """Where a day's scores are delivered (a Parquet snapshot, a PostgreSQL table...).

    Writing a day again replaces that day's scores: a re-run changes nothing."""

    @abc.abstractmethod
    def write(self, scores: Sequence[Score], day: date) -> int:
        """Make ``day``'s stored scores equal ``scores``; returns how many were written."""
        raise NotImplementedError

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Where the scores went, in words (a path, a table)."""
        raise NotImplementedError


class Scorer(abc.ABC):
    """Scores of customers at a time, from the online store or from the historical path (the
    port the score use case needs; ``serving.scorer.ChurnScorer`` is the adapter)."""

    @abc.abstractmethod
    def online_problem(self, as_of: datetime) -> str | None:
        """Why the online store cannot give the features at ``as_of`` (None: it can)."""
        raise NotImplementedError

    @abc.abstractmethod
    def online_time(self) -> tuple[datetime, str | None]:
        """The time an answer without ``as_of`` is given at: now when the online store holds
        now's features, else the online store's own time (its materialize end), with why."""
        raise NotImplementedError

    @abc.abstractmethod
    def score(self, customer_ids: Sequence[str], as_of: datetime | None = None) -> list[Score]:
        """From the online store, at ``as_of`` (default :meth:`online_time`)."""
        raise NotImplementedError

    @abc.abstractmethod
    def score_historical(self, customer_ids: Sequence[str], as_of: datetime) -> list[Score]:
        """From the historical path, at any ``as_of``."""
        raise NotImplementedError

    @abc.abstractmethod
    def freshness(self, as_of: datetime | None = None, online: bool = True):
        """How fresh the data behind an answer at ``as_of`` is (read afresh)."""
        raise NotImplementedError

    @abc.abstractmethod
    def online_freshness(self, as_of: datetime | None = None):
        """:meth:`freshness` of an online answer, cheap enough for every request."""
        raise NotImplementedError

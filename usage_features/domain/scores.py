"""A churn score, the one shape every answer takes, and the port scores leave through.

The same :class:`Score` is the CLI's JSON line, the HTTP answer's item, a snapshot's row and a
PostgreSQL row (``docs/scoring.md`` lists its fields). A probability is given only to an
``active`` customer; every other status says why there is none.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime

#: Where the features behind a score were read.
ONLINE = "online"  # the online store (its materialize day)
HISTORICAL = "historical"  # Feast's point-in-time historical path (any time)


@dataclass(frozen=True)
class Score:
    """A customer's churn risk at ``as_of``, or why none can be given."""

    customer_id: str
    as_of: datetime
    #: ``active`` (scored), ``churned``, ``unknown`` or ``invalid`` (no probability).
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

    def to_dict(self) -> dict:
        """JSON-ready: times in ISO 8601, reasons a list."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        out["reasons"] = list(self.reasons)
        return out


#: A score's field names, in order: the snapshot's and the PostgreSQL table's columns.
SCORE_FIELDS = tuple(f.name for f in fields(Score))


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

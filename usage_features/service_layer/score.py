"""Score customers at a time: from the online store when it holds that time's features, from
Feast's historical path when it does not (a past ``as_of``), and the answer says which.

The one policy for ``usage-features score``, ``POST /score`` and ``refresh``: a time the online
store cannot answer for exactly is never answered from it (see
:meth:`~usage_features.serving.scorer.ChurnScorer.online_problem`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from usage_features.adapters.customers_table import active_customers
from usage_features.domain.scores import HISTORICAL, ONLINE, Score, Scorer
from usage_features.serving.freshness import Freshness


@dataclass(frozen=True)
class ScoreAnswer:
    """Scores for one request, and the freshness of the data behind all of them."""

    scores: list[Score]
    #: :data:`~usage_features.domain.scores.ONLINE` or ``HISTORICAL``.
    features_from: str
    freshness: Freshness
    #: Why the answer does not come from the online store, when it does not.
    note: str | None = None


def score(scorer: Scorer, customer_ids: Sequence[str], as_of: datetime | None = None
          ) -> ScoreAnswer:
    """Scores of ``customer_ids`` at ``as_of`` (default now, from the online store)."""
    problem = None if as_of is None else scorer.online_problem(as_of)
    if problem is None:
        return ScoreAnswer(scorer.score(customer_ids, as_of), ONLINE,
                           scorer.online_freshness(as_of))
    return ScoreAnswer(scorer.score_historical(customer_ids, as_of), HISTORICAL,
                       scorer.freshness(as_of, online=False),
                       f"{problem}; scored from historical features")


def score_active(scorer: Scorer, customers_table: Path, as_of: datetime | None = None
                 ) -> ScoreAnswer:
    """Scores of every customer of ``customers_table`` active at ``as_of`` (signed up, not
    churned by then)."""
    return score(scorer, active_customers(customers_table, as_of or datetime.now(UTC)), as_of)

"""Score customers at a time: from the online store when it holds that time's features, from
Feast's historical path when it does not (a past ``as_of``), and the answer says which.

The one policy for ``usage-features score``, ``POST /score`` and ``refresh``: a time the online
store cannot answer for exactly is never answered from it (see
:meth:`~usage_features.serving.scorer.ChurnScorer.online_problem`). Without a time, the answer
is now when the online store holds now's features, else as of the online store's own time (its
materialize end; :meth:`~usage_features.serving.scorer.ChurnScorer.online_time`), every score's
``as_of`` that time and ``fresh`` false, the answer's ``note`` saying why: recency at one time
is never scored over the windows of another day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from usage_features.adapters.customers_table import active_customers
from usage_features.adapters.stored_files import stored_files
from usage_features.domain.scores import HISTORICAL, ONLINE, Score, Scorer
from usage_features.serving.freshness import Freshness


@dataclass(frozen=True)
class ScoreAnswer:
    """Scores for one request, and the freshness of the data behind all of them."""

    scores: list[Score]
    #: :data:`~usage_features.domain.scores.ONLINE` or ``HISTORICAL``.
    features_from: str
    freshness: Freshness
    #: Why the answer is not now from the online store, when it is not.
    note: str | None = None


@stored_files
def score(scorer: Scorer, customer_ids: Sequence[str], as_of: datetime | None = None
          ) -> ScoreAnswer:
    """Scores of ``customer_ids`` at ``as_of`` (default :func:`answer_time`)."""
    moment, why = answer_time(scorer, as_of)
    return _score_at(scorer, customer_ids, moment, why)


@stored_files
def score_active(scorer: Scorer, customers_table: Path, as_of: datetime | None = None
                 ) -> ScoreAnswer:
    """Scores of every customer of ``customers_table`` active at ``as_of`` (signed up, not
    churned by then; default :func:`answer_time`)."""
    moment, why = answer_time(scorer, as_of)
    return _score_at(scorer, active_customers(customers_table, moment), moment, why)


def answer_time(scorer: Scorer, as_of: datetime | None) -> tuple[datetime, str | None]:
    """The time to answer at: ``as_of`` when given; else now if the online store holds now's
    features, or the online store's own time and why not now."""
    return (as_of, None) if as_of is not None else scorer.online_time()


def _score_at(scorer: Scorer, customer_ids: Sequence[str], as_of: datetime,
              not_now: str | None) -> ScoreAnswer:
    problem = scorer.online_problem(as_of)
    if problem is None:
        answer = ScoreAnswer(scorer.score(customer_ids, as_of), ONLINE,
                             scorer.online_freshness(as_of))
    else:
        answer = ScoreAnswer(scorer.score_historical(customer_ids, as_of), HISTORICAL,
                             scorer.freshness(as_of, online=False),
                             f"{problem}; scored from historical features")
    if not_now is None:
        return answer
    # not the time asked for (now): every score says so
    note = not_now if answer.note is None else f"{not_now}; {answer.note}"
    return replace(answer, scores=[replace(s, fresh=False) for s in answer.scores], note=note)

"""Model selection: fit the candidates, pick the best on the validation period, refit it.

The candidates are the calibrated boosted trees (regularised for the data's size), the logistic
regression on all features, and the ``event_count_30d``-only regression. Every one of them is a
model ``train`` can ship, so the shipped model is never worse on validation than a baseline: the
baselines are candidates. The best is the highest validation PR AUC (churners are rare: PR AUC
measures the ranking where it matters), or with ``--select-by precision_at_capacity`` the
highest precision at capacity (the share of churners among the customers a team can contact
each date), ties broken by ROC AUC; it is then refitted on all labelled rows (validation period
included) and shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from usage_features.domain.capacity import Capacity
from usage_features.features.spec import EVENT_COUNT_30D
from usage_features.training import evaluate
from usage_features.training.estimators import churn_classifier, logistic_baseline

BOOSTED = "gradient boosting"
LOGISTIC = "logistic regression"
COUNT_FEATURE = EVENT_COUNT_30D
COUNT = f"baseline: {COUNT_FEATURE}"

#: What selection can rank by first (higher is better); ROC AUC breaks ties.
SELECT_BY = ("pr_auc", "precision_at_capacity")
TIE_BREAK = "roc_auc"
METRIC_NAMES = evaluate.METRIC_NAMES


@dataclass(frozen=True)
class Candidate:
    """A named model: ``build(y)`` gives its unfitted pipeline, sized to the labels ``y`` of
    the rows it will be fitted on."""

    name: str
    build: Callable[[np.ndarray], Pipeline]

    def fit(self, rows: pd.DataFrame) -> Pipeline:
        y = rows.label.to_numpy()
        return self.build(y).fit(rows, y)


def candidates(features: list[str], random_state: int = 0) -> list[Candidate]:
    """The models ``train`` chooses from (the count-only baseline when that feature is served)."""
    found = [
        Candidate(BOOSTED, lambda y: churn_classifier(features, random_state, rows=len(y),
                                                      positives=int(np.sum(y)))),
        Candidate(LOGISTIC, lambda y: logistic_baseline(features)),
    ]
    if COUNT_FEATURE in features:
        found.append(Candidate(COUNT, lambda y: logistic_baseline(features, using=[COUNT_FEATURE])))
    return found


def fit_all(models: list[Candidate], rows: pd.DataFrame) -> dict[str, Pipeline]:
    return {candidate.name: candidate.fit(rows) for candidate in models}


def score_all(fitted: dict[str, Pipeline], rows: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: pipeline.predict_proba(rows)[:, 1] for name, pipeline in fitted.items()}


def metrics_table(y: np.ndarray, scores: dict[str, np.ndarray], dates=None,
                  capacity: Capacity | None = None) -> pd.DataFrame:
    """One row per model (column ``model``), one column per metric (at capacity too with the
    rows' observation ``dates``)."""
    return pd.DataFrame([{"model": name, **evaluate.metrics(y, p, dates, capacity)}
                         for name, p in scores.items()])


@dataclass(frozen=True)
class Selection:
    """Which candidate won on the validation period, and by how much over the runner-up."""

    winner: str
    runner_up: str | None
    #: winner minus runner-up, per metric (positive: the winner is higher)
    margin: dict[str, float]
    #: the metric ranked by first (``TIE_BREAK`` after it)
    by: str = "pr_auc"

    def as_dict(self) -> dict:
        return {"winner": self.winner, "runner_up": self.runner_up,
                "ranked_by": [self.by, TIE_BREAK], "margin": self.margin}

    def sentence(self) -> str:
        if self.runner_up is None:
            return f"{self.winner} (the only candidate)"
        return (f"{self.winner}: validation {METRIC_NAMES[self.by]} {self.margin[self.by]:+.3f}, "
                f"ROC AUC {self.margin[TIE_BREAK]:+.3f} against the runner-up, "
                f"{self.runner_up}")


def select(table: pd.DataFrame, by: str = "pr_auc") -> Selection:
    """The row of ``table`` with the highest ``by`` (then ROC AUC; then the earlier row)."""
    if by not in SELECT_BY:
        raise ValueError(f"cannot select by {by!r}: choose one of {', '.join(SELECT_BY)}")
    if table.empty:
        raise ValueError("no candidate to select from")
    ranking = [by, TIE_BREAK]
    if by not in table or table[ranking].isna().any().any():
        raise ValueError(f"a candidate has no validation {METRIC_NAMES[by]} or ROC AUC; "
                         "cannot rank them")
    ranked = table.sort_values(ranking, ascending=False, kind="stable")
    first = ranked.iloc[0]
    if len(ranked) == 1:
        return Selection(first.model, None, {}, by)
    second = ranked.iloc[1]
    margin = {k: float(first[k] - second[k]) for k in table.columns if k != "model"}
    return Selection(first.model, second.model, margin, by)


__all__ = ["BOOSTED", "COUNT", "LOGISTIC", "Candidate", "Selection", "candidates", "fit_all",
           "metrics_table", "score_all", "select"]

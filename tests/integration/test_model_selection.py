"""Model selection picks the candidate the data calls for, and every candidate can be shipped.

Constructed data, no simulator: a signal linear in the logistic regression's own scale, few
rows (the regression must win), and an XOR of two features with plenty of rows (no linear model
can rank it: the boosted trees must win).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usage_features.training.estimators import boosting_regularisation
from usage_features.training.metadata import ModelMetadata
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import load_model, save_model
from usage_features.training.selection import (
    BOOSTED,
    COUNT,
    LOGISTIC,
    candidates,
    fit_all,
    metrics_table,
    score_all,
    select,
)

FEATURES = ["x1", "x2", "x3", "x4", "x5", "x6", "event_count_30d"]


def rows(n: int, seed: int, kind: str) -> pd.DataFrame:
    """``n`` labelled rows; ``event_count_30d`` is noise in both kinds."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(FEATURES)))
    if kind == "linear":  # linear in signed_log1p(x): exactly the regression's scale
        logit = -1.0 + z[:, :6] @ np.array([0.9, -0.8, 0.7, 0.6, -0.5, 0.4])
    else:  # XOR of the signs of x1 and x2
        logit = np.where(z[:, 0] * z[:, 1] > 0, 2.0, -2.0)
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x = np.sign(z) * np.expm1(np.abs(z))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = label
    return frame


def compare(train: pd.DataFrame, validate: pd.DataFrame):
    scores = score_all(fit_all(candidates(FEATURES), train), validate)
    table = metrics_table(validate.label.to_numpy(), scores)
    return table.set_index("model"), select(table)


def test_the_candidates_are_the_boosted_trees_the_regression_and_the_count_baseline():
    assert [c.name for c in candidates(FEATURES)] == [BOOSTED, LOGISTIC, COUNT]
    assert COUNT not in [c.name for c in candidates(["x1", "x2"])]


def test_a_linear_signal_in_few_rows_selects_the_logistic_regression():
    table, chosen = compare(rows(300, 1, "linear"), rows(5000, 2, "linear"))
    assert chosen.winner == LOGISTIC, table
    assert table.pr_auc[LOGISTIC] > table.pr_auc[BOOSTED] + 0.01
    assert chosen.margin["pr_auc"] == pytest.approx(
        table.pr_auc[LOGISTIC] - table.drop(LOGISTIC).pr_auc.max())


def test_an_interaction_with_enough_rows_selects_the_boosted_trees():
    table, chosen = compare(rows(6000, 3, "xor"), rows(4000, 4, "xor"))
    assert chosen.winner == BOOSTED, table
    assert table.roc_auc[BOOSTED] > 0.75
    assert table.roc_auc[LOGISTIC] < 0.6  # no linear model ranks an XOR


def test_the_winner_is_the_highest_pr_auc_and_roc_auc_breaks_a_tie():
    table = pd.DataFrame({"model": ["a", "b", "c"], "pr_auc": [0.30, 0.35, 0.35],
                          "roc_auc": [0.90, 0.80, 0.82]})
    chosen = select(table)
    assert (chosen.winner, chosen.runner_up) == ("c", "b")
    assert chosen.margin == {"pr_auc": 0.0, "roc_auc": pytest.approx(0.02)}
    assert select(table.iloc[:2]).winner == "b"


def test_a_candidate_without_a_metric_cannot_be_ranked():
    with pytest.raises(ValueError, match="cannot rank"):
        select(pd.DataFrame({"model": ["a"], "pr_auc": [np.nan], "roc_auc": [0.5]}))


def test_the_trees_are_regularised_more_for_fewer_churners():
    small, large = boosting_regularisation(3000, 90), boosting_regularisation(300_000, 9000)
    assert small["max_leaf_nodes"] < large["max_leaf_nodes"] == 31
    assert small["l2_regularization"] > large["l2_regularization"] == 1.0
    # a leaf expects about 10 churners (capped at a twentieth of the rows)
    assert small["min_samples_leaf"] == 150 and large["min_samples_leaf"] == 334
    assert boosting_regularisation(200, 100)["min_samples_leaf"] == 20


@pytest.mark.parametrize("name", [LOGISTIC, COUNT])
def test_every_candidate_saves_loads_and_scores_a_bare_matrix_as_its_pipeline(name, tmp_path):
    """The online path skips the column selection: every candidate must take the matrix."""
    train = rows(600, 5, "linear")
    model = {c.name: c for c in candidates(FEATURES)}[name].fit(train)
    saved = save_model(TrainedModel(model, ModelMetadata("svc", FEATURES, 30, 7, {})),
                       tmp_path / "m.skops")
    loaded = load_model(saved)
    test = rows(50, 6, "linear")
    expected = model.predict_proba(test)[:, 1]
    np.testing.assert_allclose(loaded.predict_matrix(test[FEATURES].to_numpy()), expected,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(loaded.predict_proba(test).to_numpy(), expected, rtol=0, atol=0)

"""A feature missing everywhere in the rows a booster is fitted on (one that needs 180 days of
history, on a shorter history) trains and scores: the column is set aside, never split on, and
the compiled trees still equal the pipeline bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usage_features.training.compiled import CompiledBoosting
from usage_features.training.estimators import SparseColumnsFilled, churn_classifier

FEATURES = ["a", "b", "late", "rare"]


def rows(n: int = 2_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n),
                          "late": np.nan, "rare": np.nan})
    frame.loc[rng.choice(n, 5, replace=False), "rare"] = 1.0  # fewer than a leaf holds
    y = (frame.a + rng.normal(scale=0.5, size=n) > 1).astype(int).to_numpy()
    return frame, y


def test_a_column_missing_everywhere_trains_and_is_ignored():
    frame, y = rows()
    model = churn_classifier(FEATURES, rows=len(frame), positives=int(y.sum())).fit(frame, y)
    later = frame.assign(late=np.random.default_rng(1).normal(size=len(frame)))

    np.testing.assert_array_equal(model.predict_proba(frame), model.predict_proba(later))
    assert model.predict_proba(frame)[:, 1].std() > 0.05  # it learned from the others


def test_the_compiled_trees_equal_the_pipeline_with_the_step():
    frame, y = rows(seed=2)
    model = churn_classifier(FEATURES, rows=len(frame), positives=int(y.sum())).fit(frame, y)
    compiled = CompiledBoosting.from_classifier(model[-1], len(FEATURES))
    assert compiled is not None
    probe = rows(n=300, seed=3)[0].to_numpy()
    probe[::7, 2] = 5.0  # values where training had none

    expected = model[1:].predict_proba(probe)[:, 1]
    np.testing.assert_array_equal(compiled.predict(probe), expected)
    np.testing.assert_array_equal(compiled.predict_proba(probe)[:, 1], expected)  # binned


@pytest.mark.parametrize("present", [0, 19, 20])
def test_columns_with_fewer_values_than_a_leaf_are_filled(present):
    values = np.full((100, 2), np.nan)
    values[:, 0] = 1.0
    values[:present, 1] = 3.0
    step = SparseColumnsFilled(min_present=20).fit(values)

    out = step.transform(values)

    assert step.sparse_.tolist() == [False, present < 20]
    assert np.isnan(values[present:, 1]).all()  # the caller's matrix is left alone
    want = 0.0 if present < 20 else np.nan
    np.testing.assert_array_equal(out[present:, 1], want)

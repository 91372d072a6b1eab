"""The compiled boosted trees score exactly as the fitted scikit-learn pipeline does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.factories import FEATURES, training_frame
from usage_features.training.compiled import COMPILED_MAX_ROWS, CompiledBoosting
from usage_features.training.estimators import churn_classifier, logistic_baseline
from usage_features.training.metadata import ModelMetadata
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import load_model, save_model


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    frame, churned = training_frame()
    pipeline = churn_classifier(FEATURES).fit(frame, churned)
    return TrainedModel(pipeline, ModelMetadata("churn_model_v1", FEATURES, 30, 7, {}))


def scoring_rows(model: TrainedModel, rows: int = 4000, seed: int = 1) -> np.ndarray:
    """Typical rows, rows with missing and infinite values, and rows exactly on thresholds."""
    rng = np.random.default_rng(seed)
    frame, _ = training_frame(rows, seed)
    matrix = frame[FEATURES].to_numpy(dtype=float)
    matrix[rng.random(matrix.shape) < 0.05] = np.nan
    matrix[rng.random(matrix.shape) < 0.01] = np.inf
    matrix[rng.random(matrix.shape) < 0.01] = -np.inf
    on_threshold = matrix[:500].copy()
    for member in model.pipeline[-1].calibrated_classifiers_:
        for (predictor,) in member.estimator[-1]._predictors[:40]:
            split = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
            finite = split[np.isfinite(split["num_threshold"])]
            picks = rng.integers(0, len(finite), len(on_threshold))
            on_threshold[np.arange(len(on_threshold)), finite["feature_idx"][picks]] = \
                finite["num_threshold"][picks]
    return np.concatenate([matrix, on_threshold])


def pipeline_probabilities(model: TrainedModel, matrix: np.ndarray) -> np.ndarray:
    return model.pipeline[1:].predict_proba(matrix)[:, 1]


def test_the_test_model_has_splits_of_every_kind_the_compiled_form_handles(model):
    nodes = np.concatenate([p.nodes for member in model.pipeline[-1].calibrated_classifiers_
                            for (p,) in member.estimator[-1]._predictors])
    splits = nodes[~nodes["is_leaf"].astype(bool)]
    assert splits["missing_go_to_left"].any() and not splits["missing_go_to_left"].all()
    assert np.isinf(splits["num_threshold"]).any()  # a split of missing from present values
    assert nodes["depth"].max() > 5


def test_compiled_probabilities_equal_the_pipeline_bit_for_bit(model):
    matrix = scoring_rows(model)
    compiled = CompiledBoosting.from_classifier(model.pipeline[-1], len(FEATURES))
    np.testing.assert_array_equal(compiled.predict(matrix), pipeline_probabilities(model, matrix))


def test_binned_trees_give_the_pipelines_probabilities_bit_for_bit(model):
    matrix = scoring_rows(model, rows=6000, seed=6)
    churn = model.compiled.predict_proba(matrix)
    np.testing.assert_array_equal(churn[:, 1], pipeline_probabilities(model, matrix))
    np.testing.assert_array_equal(churn[:, 0], 1.0 - churn[:, 1])
    # in particular a value exactly on a bin's upper threshold, just above it and just below
    member = model.pipeline[-1].calibrated_classifiers_[0].estimator[-1]
    for feature, thresholds in enumerate(member._bin_mapper.bin_thresholds_[:len(FEATURES)]):
        edges = np.concatenate([thresholds, np.nextafter(thresholds, np.inf),
                                np.nextafter(thresholds, -np.inf)])
        rows = np.repeat(matrix[:1], len(edges), axis=0)
        rows[:, feature] = edges
        np.testing.assert_array_equal(model.compiled.predict_proba(rows)[:, 1],
                                      pipeline_probabilities(model, rows))


def test_each_row_scored_alone_equals_the_pipeline_bit_for_bit(model):
    matrix = scoring_rows(model, rows=300, seed=2)
    expected = pipeline_probabilities(model, matrix)
    for i in range(len(matrix)):
        assert model.compiled.predict(matrix[i:i + 1])[0] == expected[i]


def test_predict_matrix_gives_the_same_answer_below_and_above_the_compiled_batch_size(model):
    matrix = scoring_rows(model, rows=2 * COMPILED_MAX_ROWS, seed=3)
    expected = pipeline_probabilities(model, matrix)
    np.testing.assert_array_equal(model.predict_matrix(matrix[:COMPILED_MAX_ROWS]),
                                  expected[:COMPILED_MAX_ROWS])
    np.testing.assert_array_equal(model.predict_matrix(matrix), expected)


def test_a_saved_and_loaded_model_compiles_to_the_same_probabilities(model, tmp_path):
    loaded = load_model(save_model(model, tmp_path / "model.skops"))
    matrix = scoring_rows(model, rows=500, seed=4)
    np.testing.assert_array_equal(loaded.compiled.predict(matrix),
                                  pipeline_probabilities(model, matrix))


def test_a_model_the_compiled_form_does_not_cover_is_scored_by_its_pipeline():
    frame, churned = training_frame(500)
    pipeline = logistic_baseline(FEATURES).fit(frame, churned)
    baseline = TrainedModel(pipeline, ModelMetadata("churn_model_v1", FEATURES, 30, 7, {}))
    assert baseline.compiled is None
    matrix = frame[FEATURES].to_numpy()[:5]
    np.testing.assert_array_equal(baseline.predict_matrix(matrix),
                                  pipeline[1:].predict_proba(matrix)[:, 1])


def test_a_model_whose_private_tree_arrays_changed_is_scored_by_its_pipeline(
        model, monkeypatch):
    """As if a scikit-learn release renamed the internals the compiled form reads."""
    def renamed_internals(classifier, n_features):
        raise AttributeError("'HistGradientBoostingClassifier' has no attribute '_predictors'")

    monkeypatch.setattr(CompiledBoosting, "from_classifier", staticmethod(renamed_internals))
    fresh = TrainedModel(model.pipeline, model.metadata)
    assert fresh.compiled is None
    matrix = scoring_rows(model, rows=5, seed=5)
    np.testing.assert_array_equal(fresh.predict_matrix(matrix),
                                  pipeline_probabilities(model, matrix))


def test_a_matrix_of_the_wrong_width_is_refused(model):
    with pytest.raises(ValueError, match="5 columns"):
        model.compiled.predict(np.zeros((1, 4)))


@pytest.mark.parametrize("cores", [1, 2])
def test_many_rows_scored_in_blocks_equal_the_pipeline_at_once(model, monkeypatch, cores):
    import usage_features.training.blocks as blocks

    matrix = scoring_rows(model, rows=3000, seed=4)  # 3,500 rows: four blocks in the pipeline,
    # two (an equal share per core) of the binned trees
    expected = pipeline_probabilities(model, matrix)
    monkeypatch.setattr(blocks, "PREDICT_BLOCK_BYTES", 1)  # blocks of the minimum, 1,024 rows
    monkeypatch.setattr(blocks.os, "cpu_count", lambda: cores)  # a block per thread, or one
    np.testing.assert_array_equal(model.predict_matrix(matrix), expected)
    frame = pd.DataFrame(matrix, columns=FEATURES)
    np.testing.assert_array_equal(model.predict_proba(frame).to_numpy(),
                                  model.pipeline.predict_proba(frame)[:, 1])

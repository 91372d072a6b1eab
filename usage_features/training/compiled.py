"""Compiled trees: a fitted calibrated gradient-boosting model as flat NumPy arrays.

The online path scores a few rows at a time; :class:`CompiledBoosting` gives the pipeline's
probabilities bit for bit without scikit-learn's per-tree Python calls. Many rows at a time (a
day's scores and their reasons) it walks scikit-learn's own trees over binned rows instead
(:meth:`CompiledBoosting.predict_proba`), the same probabilities again.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.pipeline import Pipeline

try:  # private: the threads scikit-learn's own predict would use (threadpoolctl's limit)
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
except ImportError:  # pragma: no cover (a later release: a thread per walk, still right)
    def _openmp_effective_n_threads() -> int:
        return 1

from usage_features.training.blocks import in_blocks
from usage_features.training.estimators import SparseColumnsFilled

#: Batches up to this size are scored by :class:`CompiledBoosting` (measured: 0.3 ms instead of
#: 9 ms for one row, 5 ms instead of 11 ms for 100). Larger ones go through scikit-learn's
#: compiled trees over binned rows (:meth:`CompiledBoosting.predict_proba`): their per-tree
#: Python calls are spread over many rows, and a compiled tree walk beats NumPy's
#: level-by-level one there (29 ms against 50 ms for 1,000 rows).
COMPILED_MAX_ROWS = 128
#: Rows per block for the binned trees (:meth:`CompiledBoosting.predict_proba`), whose walk
#: reads a byte per value, not eight: a day's 520,000 rows of reasons at 10^8 events took
#: 6.1-6.4 s in blocks of 65,536 rows, 6.7-7.0 s in blocks of 14,043 (what
#: ``blocks.PREDICT_BLOCK_BYTES`` gives 28 float features); its 74,000 rows of horizons 1.9 s
#: in two blocks of 37,000, 2.1-2.2 s in six.
BINNED_BLOCK_ROWS = 1 << 16


class CompiledBoosting:
    """A fitted binary ``CalibratedClassifierCV`` of histogram gradient boosting, as flat arrays.

    scikit-learn predicts tree by tree, one Python call per tree (about 500 for the three
    calibrated models of ``churn_model_v1``): milliseconds for a single row, almost all of it
    call overhead. Here the trees of all models are walked together, one NumPy step per tree
    level. The arithmetic is scikit-learn's own, in the same order: the same ``<=``
    comparisons (a missing value goes the side its split learned), each model's baseline plus
    its leaf values added tree by tree, each model's own calibrator, values just above 1
    clipped, the mean over the models. The probabilities equal the pipeline's bit for bit
    (the tests check it on random rows with missing and infinite values).

    Nodes are renumbered so that a split's children are adjacent (right = left + 1): one
    step is ``node = right[node] - (x <= threshold[node])``. A split that sends missing
    values left reads a copy of its feature with NaN replaced by -inf (every threshold is
    above -inf). A leaf reads a constant 0 against an infinite threshold and so points at
    itself: finished trees stay put while deeper ones go on. Trees are ordered deepest
    first, so step ``k`` touches only the trees still deeper than ``k``.
    """

    def __init__(self, column, threshold, right, value, roots, tree_depth, models, n_features,
                 boosters):
        self.boosters = list(boosters)  # each model's fitted booster (predict_proba's trees)
        self.column, self.threshold, self.right, self.value = column, threshold, right, value
        self.n_features = n_features
        order = np.argsort(-tree_depth, kind="stable")
        self.roots = roots[order]  # deepest first
        self.unorder = np.argsort(order)  # back to the models' own tree order
        # after level k, the trees still walking are the first active[k] ones
        self.active = [int(np.count_nonzero(tree_depth > k))
                       for k in range(int(tree_depth.max(initial=0)))]
        self.models = models  # (first tree, end, baseline, calibrator) per calibrated model

    @classmethod
    def from_classifier(cls, classifier, n_features: int) -> CompiledBoosting | None:
        """The compiled form of ``classifier``, or None for anything but what it supports.

        Supported: a fitted ``CalibratedClassifierCV`` on a binary target whose calibrated
        classifiers are ``HistGradientBoostingClassifier`` models on ``n_features`` numeric
        features (no categorical ones) with sigmoid or isotonic calibrators.
        """
        if not isinstance(classifier, CalibratedClassifierCV):
            return None
        calibrated = getattr(classifier, "calibrated_classifiers_", None)
        if not calibrated or len(classifier.classes_) != 2:
            return None
        columns, thresholds, rights, values, roots, depths, models = [], [], [], [], [], [], []
        boosters = []
        offset = 0
        for member in calibrated:
            booster = _booster(member.estimator)
            if (not isinstance(booster, HistGradientBoostingClassifier)
                    or member.method not in ("sigmoid", "isotonic")
                    or len(member.calibrators) != 1 or booster.n_trees_per_iteration_ != 1
                    or getattr(booster, "_preprocessor", None) is not None
                    or booster.is_categorical_ is not None
                    or booster.n_features_in_ != n_features
                    or list(booster.classes_) != list(classifier.classes_)):
                return None
            first = len(roots)
            for (predictor,) in booster._predictors:
                nodes = predictor.nodes
                if nodes["is_categorical"].any():
                    return None
                column, threshold, right, value = _flatten_tree(nodes, offset, n_features)
                columns.append(column)
                thresholds.append(threshold)
                rights.append(right)
                values.append(value)
                roots.append(offset)
                depths.append(int(nodes["depth"].max()))
                offset += len(nodes)
            baseline = float(np.asarray(booster._baseline_prediction).ravel()[0])
            booster._bin_mapper.missing_values_bin_idx_  # noqa: B018 (the binned walk's)
            boosters.append(booster)
            models.append((first, len(roots), baseline, _calibration(member.calibrators[0])))
        if not roots:
            return None
        return cls(np.concatenate(columns), np.concatenate(thresholds),
                   np.concatenate(rights), np.concatenate(values),
                   np.array(roots, dtype=np.intp), np.array(depths), models, n_features,
                   boosters)

    def leaves(self, matrix: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree: (trees, rows), in the models' tree order."""
        rows, width = len(matrix), 2 * self.n_features + 1
        data = np.empty((rows, width))
        data[:, :self.n_features] = matrix
        data[:, self.n_features:-1] = np.where(np.isnan(matrix), -np.inf, matrix)
        data[:, -1] = 0.0
        flat = data.ravel()
        node = np.repeat(self.roots[:, None], rows, axis=1)
        offsets = np.arange(rows) * width
        column, threshold, right = self.column, self.threshold, self.right
        for walking in self.active:
            at = node[:walking]
            node[:walking] = right[at] - (flat[column[at] + offsets] <= threshold[at])
        return node[self.unorder]

    def raw(self, matrix: np.ndarray) -> list[np.ndarray]:
        """Each model's decision function: its baseline plus its trees' leaf values, in order."""
        leaf_values = self.value[self.leaves(matrix)]
        raws = []
        for first, end, baseline, _ in self.models:
            terms = np.empty((end - first + 1, len(matrix)))
            terms[0] = baseline
            terms[1:] = leaf_values[first:end]
            # accumulate: strictly sequential, as scikit-learn's tree-by-tree "+="
            raws.append(np.add.accumulate(terms, axis=0)[-1])
        return raws

    def raw_binned(self, matrix: np.ndarray) -> list[np.ndarray]:
        """:meth:`raw` by scikit-learn's own trees over the rows' bins: the same numbers.

        A booster's rows are binned once (``_BinMapper.transform``: a value's bin is the first
        whose upper threshold it does not exceed, NaN the missing values' bin), and each tree
        walks bins (bytes) with its bin thresholds (``TreePredictor.predict_binned``, what
        early stopping scores with) instead of float64 values with the float thresholds
        those bins end at: for every value the same side of every split, so the same leaf.
        The leaf values are added as scikit-learn adds them (the baseline, then tree by tree),
        so the sums are bit for bit equal. A day's reasons at 10^8 events (520,000 rows, 28
        features, 900 trees): 6.6 s against 8.9 s through the pipeline.
        """
        threads = _openmp_effective_n_threads()
        raws = []
        for booster, (_, _, baseline, _) in zip(self.boosters, self.models):
            mapper = booster._bin_mapper
            binned = mapper.transform(matrix)
            raw = np.zeros(len(matrix))
            raw += baseline
            for (predictor,) in booster._predictors:
                raw += predictor.predict_binned(binned, mapper.missing_values_bin_idx_, threads)
            raws.append(raw)
        return raws

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated churn probability per row, as ``CalibratedClassifierCV.predict_proba``
        (for a few rows: many go faster through :meth:`predict_proba`)."""
        return self._calibrated(self.raw(self._checked(matrix)))

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """(rows, 2) as ``CalibratedClassifierCV.predict_proba``, by the binned trees: column 1
        its churn probabilities bit for bit, column 0 one minus them."""
        churn = self._calibrated(self.raw_binned(self._checked(matrix)))
        return np.column_stack([1.0 - churn, churn])

    def _checked(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} columns, "
                             f"got shape {matrix.shape}")
        return matrix

    def _calibrated(self, raws: list[np.ndarray]) -> np.ndarray:
        total = np.zeros(len(raws[0]))
        for raw, (*_, calibrate) in zip(raws, self.models):
            probability = calibrate(raw)
            probability[(probability > 1.0) & (probability <= 1.0 + 1e-5)] = 1.0
            total += probability
        total /= len(self.models)
        return total


def predict_churn(pipeline: Pipeline, compiled: CompiledBoosting | None,
                  matrix: np.ndarray) -> np.ndarray:
    """Churn probabilities of a fitted pipeline of column selection and classifier for a float
    matrix already in its columns' order (the selection skipped), bit for bit the pipeline's:
    up to :data:`COMPILED_MAX_ROWS` rows by ``compiled``'s NumPy walk, more by its binned trees
    in blocks; without ``compiled`` (:func:`compile_pipeline` gave None) by the pipeline, in
    blocks."""
    if compiled is None:
        return in_blocks(pipeline[1:].predict_proba, matrix, matrix.shape[1])
    if len(matrix) <= COMPILED_MAX_ROWS:
        return compiled.predict(matrix)
    return in_blocks(compiled.predict_proba, matrix, matrix.shape[1], BINNED_BLOCK_ROWS)


def compile_pipeline(pipeline: Pipeline, n_features: int) -> CompiledBoosting | None:
    """The compiled form of a fitted pipeline of column selection and classifier, or None
    (another pipeline; or scikit-learn's private tree arrays changed in a later release: the
    pipeline then scores, slower, never different)."""
    if len(pipeline) != 2:
        return None
    try:
        return CompiledBoosting.from_classifier(pipeline[-1], n_features)
    except (AttributeError, KeyError, ValueError, TypeError, IndexError):
        return None


def _calibration(calibrator):
    """``calibrator.predict`` for a 1-D float array of decision values.

    For isotonic regression, what its ``predict`` does after validating the input (clip to
    the fitted range, interpolate with ``f_``) without the validation, which costs ten times
    the arithmetic for a few rows.
    """
    interpolate = getattr(calibrator, "f_", None)
    if (not isinstance(calibrator, IsotonicRegression) or interpolate is None
            or calibrator.X_thresholds_.dtype != np.float64):
        return calibrator.predict
    low, high, clip = calibrator.X_min_, calibrator.X_max_, calibrator.out_of_bounds == "clip"

    def predict(raw: np.ndarray) -> np.ndarray:
        return interpolate(np.clip(raw, low, high) if clip else raw).astype(np.float64)

    return predict


def _flatten_tree(nodes: np.ndarray, offset: int, n_features: int):
    """One tree's nodes breadth first from ``offset``, as (column, threshold, right, value)."""
    is_leaf = nodes["is_leaf"].astype(bool)
    leaf_list, left_list, right_list = is_leaf.tolist(), nodes["left"].tolist(), \
        nodes["right"].tolist()
    order = [0]
    for old in order:  # grows while iterated: children adjacent, left first
        if not leaf_list[old]:
            order += (left_list[old], right_list[old])
    order = np.array(order, dtype=np.intp)
    position = np.empty(len(nodes), dtype=np.intp)
    position[order] = np.arange(len(order))
    leaf = is_leaf[order]
    new = np.arange(len(order))
    column = np.where(leaf, 2 * n_features, nodes["feature_idx"][order]
                      + n_features * nodes["missing_go_to_left"][order].astype(np.intp))
    threshold = np.where(leaf, np.inf, nodes["num_threshold"][order])
    right = offset + np.where(leaf, new + 1, position[nodes["right"][order].astype(np.intp)])
    return (column.astype(np.intp), threshold.astype(np.float64), right.astype(np.intp),
            nodes["value"][order].astype(np.float64))


def _booster(estimator):
    """The booster of a calibrated member: itself, or the last step of a pipeline whose other
    steps only set columns the booster never splits on
    (:class:`~usage_features.training.estimators.SparseColumnsFilled`)."""
    if isinstance(estimator, Pipeline) and all(
            isinstance(step, SparseColumnsFilled) for _, step in estimator.steps[:-1]):
        return estimator.steps[-1][1]
    return estimator

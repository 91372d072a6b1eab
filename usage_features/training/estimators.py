"""The churn classifier and its baselines: unfitted scikit-learn pipelines.

Each starts with column selection (the model's features, in order) and ends with a classifier;
``train`` fits them, :mod:`usage_features.training.model` wraps the fitted one with its metadata.
Every pipeline takes the whole feature matrix after its first step (the online path skips the
column selection), so each of them can be the model ``train`` ships.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

#: The boosted model's settings when nothing is known of the data's size.
DEFAULT_BOOSTING = {"max_leaf_nodes": 31, "min_samples_leaf": 50, "l2_regularization": 1.0}


def _select(columns: list[str]) -> ColumnTransformer:
    return ColumnTransformer([("features", "passthrough", list(columns))], remainder="drop",
                             verbose_feature_names_out=False)


def boosting_regularisation(rows: int, positives: int) -> dict[str, float]:
    """Tree size and shrinkage sized to the data, so a small data set gets a simpler model.

    - ``min_samples_leaf``: a leaf should expect about 10 rows of the rarer class
      (10 / its rate), between 20 and a twentieth of the rows;
    - ``max_leaf_nodes``: one leaf per 100 rows of the rarer class, between 4 and 31;
    - ``l2_regularization``: 1000 / rows of the rarer class, between 1 and 10.
    """
    if rows <= 0:
        raise ValueError("no rows to size the model to")
    minority = max(1, min(positives, rows - positives))
    min_leaf = math.ceil(10 * rows / minority)
    return {"max_leaf_nodes": int(min(31, max(4, minority // 100))),
            "min_samples_leaf": int(min(max(20, rows // 20), max(20, min_leaf))),
            "l2_regularization": float(min(10.0, max(1.0, 1000 / minority)))}


def churn_classifier(features: list[str], random_state: int = 0, rows: int | None = None,
                     positives: int | None = None) -> Pipeline:
    """Gradient-boosted trees (missing values handled natively), isotonic-calibrated.

    With ``rows`` and ``positives`` (of the data it will be fitted on) the trees are
    regularised for that size (:func:`boosting_regularisation`); early stopping on an inner
    tenth of the rows ends the boosting once the held-out loss stops improving.
    """
    sizes = (DEFAULT_BOOSTING if rows is None or positives is None
             else boosting_regularisation(rows, positives))
    booster = HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300,
                                             early_stopping=True, random_state=random_state,
                                             **sizes)
    filled = Pipeline([("fill", SparseColumnsFilled(min_present=MIN_PRESENT)),
                       ("booster", booster)])
    return Pipeline([
        ("select", _select(features)),
        ("model", CalibratedClassifierCV(filled, method="isotonic", cv=CALIBRATION_FOLDS)),
    ])


#: The calibrated models' cross-validation folds: each class needs at least this many rows.
CALIBRATION_FOLDS = 3

#: Values a feature needs in the rows a booster is fitted on for the booster to see it: the
#: smallest leaf the boosted model allows (:func:`boosting_regularisation`).
MIN_PRESENT = 20


class SparseColumnsFilled(TransformerMixin, BaseEstimator):
    """Columns with fewer than ``min_present`` values (not NaN) in the rows it is fitted on are
    set to 0 (the booster then has nothing to split on in them, and ignores them).

    A feature that is missing everywhere in a fold (one that needs 180 days of history, on a
    shorter history) makes scikit-learn 1.9's histogram binning fail; one with fewer values
    than the smallest leaf can hold cannot be split on anyway. Constant columns are never
    split on, so the booster's predictions do not depend on them: the compiled trees
    (:mod:`~usage_features.training.compiled`) need not apply this step.
    """

    def __init__(self, min_present: int = 1):
        self.min_present = min_present

    def fit(self, X, y=None):
        values = np.asarray(X, dtype=np.float64)
        self.sparse_ = (~np.isnan(values)).sum(axis=0) < self.min_present
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, X):
        values = np.array(X, dtype=np.float64)  # a copy: the caller's matrix is left alone
        values[:, self.sparse_] = 0.0
        return values


def logistic_baseline(features: list[str], using: list[str] | None = None) -> Pipeline:
    """What an analyst tries first: imputed, log-scaled, standardised logistic regression.

    With ``using`` (some of ``features``) the regression sees only those: a pipeline that takes
    all of ``features``, as the one ``train`` ships must.
    """
    steps = [("select", _select(features))]
    if using is not None:
        unknown = [name for name in using if name not in features]
        if unknown:
            raise ValueError(f"not among the features: {unknown}")
        steps.append(("use", ColumnTransformer(
            [("used", "passthrough", [list(features).index(name) for name in using])],
            remainder="drop")))
    return Pipeline([
        *steps,
        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
        ("log", FunctionTransformer(_signed_log1p)),
        ("scale", StandardScaler()),
        ("model", LogisticRegression(max_iter=2000, C=0.5)),
    ])


def _signed_log1p(values):
    values = np.asarray(values, dtype=float)
    return np.sign(values) * np.log1p(np.abs(values))

"""The churn classifier and its baselines: unfitted scikit-learn pipelines.

Each starts with column selection (the model's features, in order) and ends with a classifier;
``train`` fits them, :mod:`usage_features.training.model` wraps the fitted one with its metadata.
"""

from __future__ import annotations

from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler


def _select(columns: list[str]) -> ColumnTransformer:
    return ColumnTransformer([("features", "passthrough", list(columns))], remainder="drop",
                             verbose_feature_names_out=False)


def churn_classifier(features: list[str], random_state: int = 0) -> Pipeline:
    """Gradient-boosted trees (missing values handled natively), isotonic-calibrated."""
    booster = HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300, max_leaf_nodes=31,
                                             min_samples_leaf=50, l2_regularization=1.0,
                                             early_stopping=True, random_state=random_state)
    return Pipeline([
        ("select", _select(features)),
        ("model", CalibratedClassifierCV(booster, method="isotonic", cv=3)),
    ])


def logistic_baseline(features: list[str]) -> Pipeline:
    """What an analyst tries first: imputed, log-scaled, standardised logistic regression."""
    return Pipeline([
        ("select", _select(features)),
        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
        ("log", FunctionTransformer(_signed_log1p)),
        ("scale", StandardScaler()),
        ("model", LogisticRegression(max_iter=2000, C=0.5)),
    ])


def _signed_log1p(values):
    import numpy as np

    values = np.asarray(values, dtype=float)
    return np.sign(values) * np.log1p(np.abs(values))

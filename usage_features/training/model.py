"""The churn classifier, its baselines, and how a trained model is saved and loaded.

A trained model is a scikit-learn ``Pipeline`` plus metadata (feature service and feature list,
horizon, training window, metrics, library versions, a hash of the training data), saved with
skops, which loads only an allow-list of types instead of unpickling arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

#: Packages whose versions are recorded with a model.
RECORDED_VERSIONS = ("usage-features", "scikit-learn", "feast", "pandas", "numpy", "skops")


class ModelMismatchError(ValueError):
    """A saved model does not fit the feature service it is used with."""


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


@dataclass
class ModelMetadata:
    feature_service: str
    features: list[str]
    horizon_days: int
    interval_days: int
    train_window: dict[str, str]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    training_data_sha256: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""

    @property
    def model_version(self) -> str:
        return f"{self.feature_service}-{self.training_data_sha256[:12]}"


@dataclass
class TrainedModel:
    pipeline: Pipeline
    metadata: ModelMetadata

    def predict_proba(self, frame: pd.DataFrame) -> pd.Series:
        """Churn probability for each row of a frame holding the model's features."""
        missing = [f for f in self.metadata.features if f not in frame.columns]
        if missing:
            raise ModelMismatchError(f"the frame lacks the model's feature(s): {missing}")
        return pd.Series(self.pipeline.predict_proba(frame[self.metadata.features])[:, 1],
                         index=frame.index, name="churn_probability")

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probabilities for a float matrix whose columns are ``metadata.features``.

        Skips the pipeline's column selection (the matrix is already in its order): the online
        path, with no DataFrame to build.
        """
        return self.pipeline[1:].predict_proba(matrix)[:, 1]

    def check_features(self, served: list[str]) -> None:
        """Raise unless the model was trained on exactly ``served`` (in order)."""
        if list(served) != list(self.metadata.features):
            extra = sorted(set(self.metadata.features) - set(served))
            missing = sorted(set(served) - set(self.metadata.features))
            raise ModelMismatchError(
                f"model {self.metadata.model_version} was trained on a different feature list "
                f"than feature service {self.metadata.feature_service!r} serves now "
                f"(not served any more: {extra or 'none'}; new: {missing or 'none'}; "
                "or another order); retrain it")


def training_data_hash(frame: pd.DataFrame) -> str:
    """A stable hash of a training frame's values (row order included)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def installed_versions() -> dict[str, str]:
    return {name: version(name) for name in RECORDED_VERSIONS}


def save_model(model: TrainedModel, path: Path) -> Path:
    """Write ``path`` (skops) and ``path.json`` (the metadata, readable without loading)."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = asdict(model.metadata)
    sio.dump({"pipeline": model.pipeline, "metadata": json.dumps(meta)}, path)
    path.with_suffix(path.suffix + ".json").write_text(
        json.dumps({**meta, "model_version": model.metadata.model_version}, indent=2))
    return path


def load_model(path: Path, served: list[str] | None = None) -> TrainedModel:
    """Load a model saved by :func:`save_model`, trusting only scikit-learn and NumPy types.

    With ``served`` (the feature service's current features) a mismatch is an error.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}; run `usage-features train` first")
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not t.startswith(("sklearn.", "numpy.", "builtins."))]
    if unexpected:
        raise ModelMismatchError(f"{path} holds types outside scikit-learn/NumPy: {unexpected}")
    loaded = sio.load(path, trusted=untrusted)
    model = TrainedModel(loaded["pipeline"], ModelMetadata(**json.loads(loaded["metadata"])))
    if served is not None:
        model.check_features(served)
    return model

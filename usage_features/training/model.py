"""The trained model: a fitted scikit-learn ``Pipeline`` plus its metadata.

The pipelines come from :mod:`usage_features.training.estimators`, the metadata (feature
service and feature list, horizon, training window, metrics, library versions, a hash of the
training data) is :class:`~usage_features.training.metadata.ModelMetadata`, the online fast
path is :mod:`usage_features.training.compiled`. Saved and loaded by
:mod:`usage_features.training.persistence` (skops, an explicit allow-list of types, a hash of
the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from usage_features.domain.vocabulary import EventVocabulary
from usage_features.training.blocks import in_blocks
from usage_features.training.compiled import CompiledBoosting, compile_pipeline, predict_churn
from usage_features.training.horizons import HorizonModel, horizon_column, median_agreeing
from usage_features.training.metadata import ModelMetadata


class ModelMismatchError(ValueError):
    """A saved model does not fit the feature service it is used with."""


@dataclass
class TrainedModel:
    pipeline: Pipeline
    metadata: ModelMetadata
    #: The longer horizons' probabilities and the median time to churn
    #: (:mod:`usage_features.training.horizons`); None for a model saved before them (or
    #: whose data could test no horizon): it scores the same, those fields empty.
    horizons: HorizonModel | None = None

    @property
    def horizon_days(self) -> tuple[int, ...]:
        """The longer horizons this model gives probabilities for (none: empty)."""
        return self.horizons.horizons if self.horizons is not None else ()

    def predict_horizons(self, matrix: np.ndarray, base: np.ndarray,
                         frame: pd.DataFrame | None = None
                         ) -> tuple[np.ndarray, np.ndarray] | None:
        """For rows of ``matrix`` (the model's features, in order) whose churn probability
        is ``base``: each longer horizon's probability (non-decreasing from ``base``) and the
        median days to churn (:func:`median_agreeing`); None without horizons."""
        if self.horizons is None:
            return None
        probabilities, days = self.horizons.predict(matrix, base, frame)
        return probabilities, median_agreeing(
            days, np.column_stack([base, probabilities]),
            (self.metadata.horizon_days, *self.horizon_days))

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``churn_probability``, one ``churn_probability_<h>d`` per horizon and
        ``expected_days_to_churn`` for each row of ``frame`` (no horizon columns without
        horizons)."""
        base = self.predict_proba(frame)
        out = pd.DataFrame({"churn_probability": base}, index=frame.index)
        found = self.predict_horizons(
            frame[self.metadata.features].to_numpy(dtype=np.float64, na_value=np.nan),
            base.to_numpy(), frame)
        if found is not None:
            probabilities, days = found
            for column, horizon in enumerate(self.horizon_days):
                out[horizon_column(horizon)] = probabilities[:, column]
            out["expected_days_to_churn"] = days
        return out

    def predict_proba(self, frame: pd.DataFrame) -> pd.Series:
        """Churn probability for each row of a frame holding the model's features."""
        missing = [f for f in self.metadata.features if f not in frame.columns]
        if missing:
            raise ModelMismatchError(f"the frame lacks the model's feature(s): {missing}")
        matrix = frame[self.metadata.features]
        return pd.Series(self._in_blocks(self.pipeline.predict_proba, matrix),
                         index=frame.index, name="churn_probability")

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Churn probabilities for a float matrix whose columns are ``metadata.features``.

        Skips the pipeline's column selection (the matrix is already in its order): the online
        path, with no DataFrame to build. Up to ``COMPILED_MAX_ROWS`` rows go through
        :class:`CompiledBoosting`'s NumPy walk, more through its binned trees (both the
        pipeline's probabilities, bit for bit); a model it does not cover through the pipeline
        (:func:`~usage_features.training.compiled.predict_churn`).
        """
        return predict_churn(self.pipeline, self.compiled,
                             np.asarray(matrix, dtype=np.float64))

    def _in_blocks(self, predict_proba, rows) -> np.ndarray:
        return in_blocks(predict_proba, rows, len(self.metadata.features))

    @cached_property
    def compiled(self) -> CompiledBoosting | None:
        """The pipeline's model as :class:`CompiledBoosting`; None for a model it cannot run
        (:func:`~usage_features.training.compiled.compile_pipeline`)."""
        return compile_pipeline(self.pipeline, len(self.metadata.features))

    def check_vocabulary(self, vocabulary: EventVocabulary) -> None:
        """Raise unless the model was trained on features of ``vocabulary`` (the repo's)."""
        trained = self.metadata.event_vocabulary
        if trained.sha256 == vocabulary.sha256:
            return
        added = sorted(set(vocabulary.names) - set(trained.names))
        removed = sorted(set(trained.names) - set(vocabulary.names))
        raise ModelMismatchError(
            f"model {self.metadata.model_version} was trained on another event vocabulary "
            f"(sha256 {trained.sha256[:12]}) than the repo declares now "
            f"({vocabulary.sha256[:12]}): types added {added or 'none'}, removed "
            f"{removed or 'none'}, or roles, order or the unlisted or adoption setting "
            "changed; retrain it (`usage-features train`)")

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

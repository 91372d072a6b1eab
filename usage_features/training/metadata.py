"""What is recorded with a trained model: its metadata, the training data's hash, versions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.metadata import version

import pandas as pd

from usage_features.domain.vocabulary import EventVocabulary, from_dict

#: Packages whose versions are recorded with a model.
RECORDED_VERSIONS = ("usage-features", "scikit-learn", "feast", "pandas", "numpy", "skops",
                     "scikit-survival")


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
    #: Which candidate ``train`` shipped and by how much it beat the runner-up on validation:
    #: ``winner``, ``runner_up``, ``ranked_by``, ``margin`` (winner minus runner-up, per
    #: metric), ``refit_rows`` (the rows the shipped model was refitted on). Empty for a model
    #: saved before selection existed.
    selection: dict = field(default_factory=dict)
    #: ``train --backtest K``: ``folds`` and, per candidate and metric, the ``mean``, ``std``,
    #: ``min`` and ``max`` over the folds. Empty without a backtest.
    backtest: dict = field(default_factory=dict)
    #: Each feature's median over the training rows: what a score's reasons compare the
    #: customer with (see :mod:`usage_features.serving.reasons`). None for a model saved before
    #: they were recorded: it scores the same, without reasons.
    reference_values: dict[str, float] | None = None
    #: The event vocabulary the features were built from (``EventVocabulary.to_dict``), and its
    #: hash; None and "" for a model saved before vocabularies: the default one.
    vocabulary: dict | None = None
    vocabulary_sha256: str = ""
    #: Events per stored event name up to the end of the training window (the names the
    #: model has seen: ``monitor`` reports any new one). None for a model saved before.
    event_names: dict[str, int] | None = None
    #: The longer horizons (:mod:`usage_features.training.horizons`): ``horizons`` asked for,
    #: ``shipped`` (per horizon, ``survival`` or ``classifier``), ``skipped`` (per horizon
    #: the data could not test, why), ``metrics`` (per horizon and model, on its test
    #: period). Empty for a model saved before horizons.
    horizons: dict = field(default_factory=dict)
    #: How the training rows were sampled (``train --max-rows``): ``customers`` of
    #: ``of_customers``, ``rows`` of ``grid_rows``, ``max_rows``. Empty: every row.
    sample: dict = field(default_factory=dict)
    #: The observation rows left out because their windows reach before the event history
    #: (:func:`~usage_features.training.labels.complete_rows`): ``history_from`` (the day it
    #: starts), ``observed_from`` (the day its customers are observed from), ``rows`` left out
    #: of ``of_rows``. Empty: none.
    incomplete_history: dict = field(default_factory=dict)
    #: The hash behind ``model_version`` when it is not ``training_data_sha256`` alone (a
    #: model with horizons: :func:`horizons_version_sha256`), fixed when trained, so a saved
    #: model keeps its version and its report folder. Empty: the training data's hash.
    version_sha256: str = ""

    @property
    def event_vocabulary(self) -> EventVocabulary:
        return from_dict(self.vocabulary)

    @property
    def model_version(self) -> str:
        """The feature service and a hash of what the model was fitted on
        (:attr:`version_sha256`, else the classifier's training data)."""
        return f"{self.feature_service}-{(self.version_sha256 or self.training_data_sha256)[:12]}"


def horizons_version_sha256(training_data_sha256: str, horizons: dict) -> str:
    """The hash a model with horizons is versioned by: the classifier's rows, the survival
    rows and the horizons (two models that differ only in their horizons are two versions)."""
    return hashlib.sha256(json.dumps([training_data_sha256, horizons["survival_data_sha256"],
                                      horizons["horizons"]]).encode()).hexdigest()


def training_data_hash(frame: pd.DataFrame) -> str:
    """A stable hash of a training frame's values (row order included)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(list(frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def installed_versions() -> dict[str, str]:
    return {name: version(name) for name in RECORDED_VERSIONS}

"""Wire the default adapters from a repo's configuration: what every use case is handed.

A use case never opens a store, loads a model or picks a sink itself; it asks its
:class:`Context`. Tests hand the same use cases a context with fakes (a list-backed
:class:`~usage_features.domain.scores.ScoreSink`, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from usage_features.adapters.score_snapshots import ParquetSnapshots
from usage_features.config import RepoPaths
from usage_features.domain.scores import ScoreSink
from usage_features.features.store import DEFAULT_CONFIG, open_store
from usage_features.serving.freshness import max_event_lag
from usage_features.serving.scorer import ChurnScorer
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import load_model


@dataclass
class Context:
    """One repo's settings and the ports the use cases need, opened on first use."""

    paths: RepoPaths
    #: The repo's Feast config file (``feature_store.yaml``, or another online store's).
    config: str = DEFAULT_CONFIG
    #: The model file; default the repo's.
    model_path: Path | None = None
    #: How far the latest event may lie before the answer's time without a warning.
    max_lag: timedelta = field(default_factory=max_event_lag)
    #: Where a day's scores go besides the repo's snapshots (a PostgreSQL sink, say).
    extra_sinks: list[ScoreSink] = field(default_factory=list)

    @property
    def repo(self) -> Path:
        return self.paths.repo

    @cached_property
    def model(self) -> TrainedModel:
        """The model, checked against the repo's vocabulary (a refused one raises)."""
        return load_model(self.model_path or self.paths.model, repo=self.paths.repo)

    @cached_property
    def store(self):
        """The repo's Feast ``FeatureStore``."""
        return open_store(self.paths.repo, self.config)

    @cached_property
    def scorer(self) -> ChurnScorer:
        model = self.model  # first: a refused model is the error, before any store is opened
        return ChurnScorer(self.store, model, repo=self.paths.repo, config=self.config,
                           max_lag=self.max_lag)

    @property
    def sinks(self) -> list[ScoreSink]:
        """The repo's daily snapshots, then any extra sink."""
        return [ParquetSnapshots(self.paths.scores), *self.extra_sinks]


def bootstrap(repo: Path, config: str = DEFAULT_CONFIG, model_path: Path | None = None,
              max_lag_hours: float | None = None, sink: str | None = None) -> Context:
    """The context of the repo at ``repo``: ``max_lag_hours`` default
    ``$USAGE_FEATURES_MAX_LAG_HOURS`` or 36 (a bad value raises ``ValueError``); ``sink`` a
    ``postgresql://`` conninfo to also deliver scores to."""
    extra: list[ScoreSink] = []
    if sink:
        # deferred: the postgres extra
        from usage_features.adapters.postgres_scores import PostgresScoreSink

        extra.append(PostgresScoreSink(sink))
    return Context(RepoPaths(Path(repo)), config, model_path, max_event_lag(max_lag_hours), extra)

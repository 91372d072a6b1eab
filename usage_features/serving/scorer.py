"""Score customers from the online store: probability, risk band, reasons, model version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from threadpoolctl import ThreadpoolController

from usage_features.config import RepoPaths, risk_bands
from usage_features.features.retrieval import online_refs, read_online, served_feature_names
from usage_features.features.store import DEFAULT_CONFIG, open_store
from usage_features.serving.reasons import explain
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import load_model

UNKNOWN = ("unknown customer: no features in the online store (never ingested, or not "
           "materialized yet)")


@dataclass
class Score:
    customer_id: str
    model_version: str
    churn_probability: float | None = None
    risk_band: str | None = None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        return {k: v for k, v in out.items() if v is not None or k in ("churn_probability",)}


class ChurnScorer:
    """Online features through ``churn_model_v1`` -> model -> scores. Keep one per process."""

    def __init__(self, store, model: TrainedModel, bands: dict[str, float] | None = None):
        self.store = store
        self.model = model
        self.bands = bands or risk_bands()
        # Resolved once: the service's feature views (read directly from the online store) and
        # the model's compiled trees.
        self._refs = online_refs(store, model.metadata.feature_service)
        self.model.compiled
        self._threads = ThreadpoolController()

    @classmethod
    def from_repo(cls, repo: Path, model_path: Path | None = None,
                  config: str = DEFAULT_CONFIG) -> ChurnScorer:
        model = load_model(model_path or RepoPaths(repo).model, served_feature_names())
        return cls(open_store(repo, config), model)

    def band(self, probability: float) -> str:
        return [name for name, low in self.bands.items() if probability >= low][-1]

    def score(self, customer_ids: Sequence[str], as_of: datetime | None = None) -> list[Score]:
        version = self.model.metadata.model_version
        if not customer_ids:
            return []
        online = read_online(self.store, list(customer_ids), as_of, self._refs)
        # One thread: for request-sized batches OpenMP's start-up and spin-waits on a busy
        # machine cost far more than they save (milliseconds, seconds at the tail).
        with self._threads.limit(limits=1, user_api="openmp"):
            probabilities = self.model.predict_matrix(online.matrix(self.model.metadata.features))
        scores = []
        for customer, known, p, record in zip(online.customer_ids, online.known.tolist(),
                                              probabilities.tolist(), online.records()):
            if not known:
                scores.append(Score(customer, version, error=UNKNOWN))
                continue
            scores.append(Score(customer, version, p, self.band(p), explain(record)))
        return scores

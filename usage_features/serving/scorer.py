"""Score customers from the online store: probability, risk band, reasons, model version.

Right or refuse: the online store holds one UTC day's features (its materialize end's), so a
request time on another day (``as_of`` in the past, say) is refused with
:class:`OnlineTimeError`, and :meth:`ChurnScorer.score_historical` reads that time's features
through Feast's historical path instead (what ``predict`` reads). Without a time, the answer is
given now when the online store holds now's features, else as of the online store's own time
(:meth:`ChurnScorer.online_time`): never recency at one time over the windows of another day.
Churned, incomplete and unknown customers get a ``status`` and no probability (see
:mod:`usage_features.serving.status`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from usage_features.config import RepoPaths, risk_bands
from usage_features.domain.scores import DEFAULT_HORIZONS, HISTORICAL, ONLINE, Score, Scorer
from usage_features.features.retrieval import (
    historical_features,
    online_refs,
    read_online,
)
from usage_features.features.spec import (
    DAYS_SINCE_LAST_EVENT,
    LONGEST_WINDOW_DAYS,
    TENURE_DAYS,
    feature_spec,
)
from usage_features.features.store import (
    DEFAULT_CONFIG,
    OnlineStoreNotMaterialized,
    check_online_tables,
)
from usage_features.ingestion.settings import load_settings, settings_path
from usage_features.serving.freshness import (
    Freshness,
    day_seconds,
    freshness,
    online_day_problem,
)
from usage_features.serving.reasons import GroupReasons
from usage_features.serving.status import ACTIVE, CHURNED, INCOMPLETE, ChurnDates, statuses
from usage_features.serving.status import UNKNOWN as UNKNOWN_STATUS
from usage_features.training.model import ModelMismatchError, TrainedModel

UNKNOWN = ("unknown customer: no events before the scoring day and not in the customers table "
           "(or not signed up yet)")


def incomplete_history(history_from: date) -> str:
    """Why a customer who signed up before the event history starts is not scored yet."""
    complete = history_from + timedelta(days=LONGEST_WINDOW_DAYS)
    return (f"incomplete history: signed up before the event history starts ({history_from}), "
            f"so its {LONGEST_WINDOW_DAYS}-day windows would count only the events since: "
            f"scored from {complete} on (or declare an earlier `events: complete_from` in "
            "usage_features.yaml if every event since signup is in the log)")


#: Batches of at least this many active customers are predicted on every core (each counts
#: once more per feature group for the reasons: 10,000 customers are about 70,000 rows).
PARALLEL_MIN_ROWS = 10_000


class OnlineTimeError(ValueError):
    """The online store cannot give the features at the requested time (``problem`` says
    why)."""

    def __init__(self, as_of: datetime, problem: str) -> None:
        self.as_of, self.problem = as_of, problem
        super().__init__(f"cannot score online as of {as_of.isoformat()}: {problem}. Read that "
                         "time's features through the historical path (`usage-features "
                         "predict`, or `score --as-of`, which falls back to it)")


class ChurnScorer(Scorer):
    """Online features through ``churn_model_v1`` -> model -> scores. Keep one per process."""

    def __init__(self, store, model: TrainedModel, bands: dict[str, float] | None = None,
                 repo: Path | None = None, config: str = DEFAULT_CONFIG,
                 max_lag: timedelta | None = None):
        self.store = store
        self.model = model
        self.bands = bands or risk_bands()
        self.repo = Path(repo) if repo is not None else Path(store.repo_path)
        self.config = config
        self.max_lag = max_lag
        self.churn_dates = ChurnDates(RepoPaths(self.repo).customers)
        # Resolved once: the service's feature views (read directly from the online store) and
        # the model's compiled trees.
        self._refs = online_refs(store, model.metadata.feature_service)
        # A missing online table is a clear error now, not a traceback at the first request.
        check_online_tables(store, [
            store.get_feature_view(name, allow_registry_cache=True)
            for name in dict.fromkeys(r.split(":")[0]
                                      for r in self._refs.features + self._refs.inputs)])
        _ = self.model.compiled  # compiled now, not at the first request
        # Reasons: each feature group's share of the probability, against the model's
        # reference values (none for a model saved before they were recorded: a warning).
        self.reasons = GroupReasons(model.metadata.features, model.metadata.reference_values,
                                    spec=feature_spec(model.metadata.event_vocabulary))
        self.reasons.warn_if_unavailable(model.metadata.model_version)
        # The horizon fields every score carries: the model's, else the repo's setting (a
        # model saved before horizons scores with them empty).
        self.horizon_days = tuple(model.metadata.horizons.get("horizons") or ()) or \
            repo_horizons(self.repo)
        self._threads = ThreadpoolController()
        self._state: Freshness | None = None
        self._build_state = RepoPaths(self.repo).build_state
        self._state_key: tuple | None = None

    def band(self, probability: float) -> str:
        return [name for name, low in self.bands.items() if probability >= low][-1]

    def freshness(self, as_of: datetime | None = None, online: bool = True) -> Freshness:
        """How fresh the data is for an answer at ``as_of`` (default now) from the online store
        (or, ``online=False``, from the historical path), read afresh."""
        return freshness(self.repo, as_of, self.config, self.store if online else None,
                         self.max_lag, online)

    def online_freshness(self, as_of: datetime | None = None) -> Freshness:
        """:meth:`freshness` of an online answer, from what the scorer last read of the store
        (re-read when a build or materialize changed it): cheap enough for every request."""
        return replace(self._online_state(), as_of=as_of or datetime.now(UTC))

    def _online_state(self) -> Freshness:
        """What the online store holds (its materialize end, pending builds), re-read only
        when the build state, the registry file or the settings (``complete_from``) changed: an
        explicit ``as_of`` is checked against it on every call, so the check must cost next to
        nothing."""
        key = (_mtime(self._build_state), _mtime(self._registry_file()),
               _mtime(settings_path(self.repo)))
        if key[1] is None or key != self._state_key:  # (a registry not in a local file)
            self._state, self._state_key = self.freshness(), key
        return self._state

    def _registry_file(self) -> Path | None:
        path = str(self.store.config.registry.path)
        if "://" in path:
            return None
        return Path(path) if Path(path).is_absolute() else self.repo / path

    def score(self, customer_ids: Sequence[str], as_of: datetime | None = None) -> list[Score]:
        """Scores at ``as_of`` from the online store; default :meth:`online_time` (now, unless
        the online store does not hold now's features: then its own time, which each score's
        ``as_of`` gives).

        A time the online store cannot answer for exactly (another UTC day than its materialize
        end's, or a build not materialized yet) raises :class:`OnlineTimeError`: the features
        of one day are never scored with the recency of another.
        """
        if not customer_ids:
            return []
        moment = as_of if as_of is not None else self.online_time()[0]
        problem = self.online_problem(moment)
        if problem is not None:
            raise OnlineTimeError(moment, problem)
        online = read_online(self.store, list(customer_ids), moment, self._refs)
        return self._scores(online.customer_ids, online.matrix(self.model.metadata.features),
                            online.values[DAYS_SINCE_LAST_EVENT],
                            online.values[TENURE_DAYS], moment,
                            self.online_freshness(moment))

    def score_historical(self, customer_ids: Sequence[str], as_of: datetime) -> list[Score]:
        """Scores at ``as_of`` from the historical features (any time; slower than online)."""
        if not customer_ids:
            return []
        entities = pd.DataFrame({"customer_id": list(customer_ids), "event_timestamp": as_of})
        frame = historical_features(self.store, entities, self.model.metadata.feature_service)
        missing = [f for f in self.model.metadata.features if f not in frame.columns]
        if missing:
            raise ModelMismatchError(f"the historical features lack the model's: {missing}")
        matrix = frame[self.model.metadata.features].to_numpy(dtype=float, na_value=np.nan)
        record = self.freshness(as_of, online=False)
        return self._scores(list(customer_ids), matrix,
                            frame[DAYS_SINCE_LAST_EVENT].to_numpy(dtype=float),
                            frame[TENURE_DAYS].to_numpy(dtype=float), as_of, record)

    def online_problem(self, as_of: datetime) -> str | None:
        """Why the online store cannot answer for ``as_of`` exactly (None: it can)."""
        return online_day_problem(self._online_state(), as_of)

    def online_time(self, now: datetime | None = None) -> tuple[datetime, str | None]:
        """The time an answer without ``as_of`` is given at, and why it is not ``now``.

        ``now`` (default the current time) when the online store holds now's features; else
        the online store's own time, its materialize end (an online store materialized days
        ago answers as of that day, not with today's recency over that day's windows), with
        the reason. Never materialized: :class:`OnlineStoreNotMaterialized`.
        """
        now = now or datetime.now(UTC)
        problem = self.online_problem(now)
        if problem is None:
            return now, None
        held = self._online_state().materialized_through
        if held is None:
            raise OnlineStoreNotMaterialized(
                "no online features: the online store was never materialized; run "
                f"`usage-features materialize --repo {self.repo}`")
        return held, (f"no time was given and the online store does not hold the features of "
                      f"now ({problem}): answered as of the online store's own time, "
                      f"{held.isoformat()}; run `usage-features materialize` to score now")

    def _scores(self, customer_ids: list[str], matrix: np.ndarray,
                days_since_last_event: np.ndarray, tenure_days: np.ndarray,
                as_of: datetime, record: Freshness) -> list[Score]:
        """Probability and reasons for each active customer's row of ``matrix`` (the model's
        features), all in one batch through the model (see :class:`GroupReasons`); churned,
        incomplete and unknown customers are not scored."""
        version = self.model.metadata.model_version
        churned_at = self.churn_dates.seconds(customer_ids)
        status = statuses(days_since_last_event, tenure_days, churned_at,
                          np.full(len(customer_ids), as_of.timestamp()),
                          day_seconds(record.history_from))
        common = {"as_of": as_of.astimezone(UTC), "model_version": version,
                  "features_from": ONLINE if record.online else HISTORICAL,
                  "latest_event_at": record.latest_event_at, "fresh": not record.warnings()}
        active = matrix[status == ACTIVE]
        # One thread for request-sized batches: OpenMP's start-up and spin-waits on a busy
        # machine cost far more than they save (milliseconds, seconds at the tail). Every core
        # for a batch job's (refresh: seconds of trees).
        threads = None if len(active) >= PARALLEL_MIN_ROWS else 1
        with self._threads.limit(limits=threads, user_api="openmp"):
            probabilities, raises = self.reasons.score(self.model.predict_matrix, active)
            longer = self._horizons(active, probabilities)
        scored = iter(zip(probabilities.tolist(), self.reasons.explain(active, raises), longer))
        empty = {"horizon_probabilities": tuple((h, None) for h in self.horizon_days)}
        scores = []
        for customer, state, gone in zip(customer_ids, status.tolist(), churned_at.tolist()):
            if state == CHURNED:
                when = datetime.fromtimestamp(gone, UTC)
                scores.append(Score(customer, status=CHURNED, churned_at=when, **common,
                                    **empty))
            elif state == UNKNOWN_STATUS:
                scores.append(Score(customer, status=UNKNOWN_STATUS, error=UNKNOWN, **common,
                                    **empty))
            elif state == INCOMPLETE:
                scores.append(Score(customer, status=INCOMPLETE,
                                    error=incomplete_history(record.history_from), **common,
                                    **empty))
            else:
                p, reasons, (horizons, days) = next(scored)
                scores.append(Score(customer, status=ACTIVE, churn_probability=p,
                                    risk_band=self.band(p),
                                    reasons=tuple(reason.text for reason in reasons), **common,
                                    horizon_probabilities=horizons,
                                    expected_days_to_churn=days))
        return scores

    def _horizons(self, active: np.ndarray, probabilities: np.ndarray) -> list[tuple]:
        """Per active row: ``((days, probability), ...)`` for :attr:`horizon_days` (None for
        one the model does not give) and the median days to churn (None: none)."""
        found = self.model.predict_horizons(active, probabilities)
        if found is None:
            none = tuple((h, None) for h in self.horizon_days)
            return [(none, None)] * len(active)
        at = {h: i for i, h in enumerate(self.model.horizon_days)}
        values, days = found
        rows = values.tolist()
        return [(tuple((h, row[at[h]] if h in at else None) for h in self.horizon_days),
                 None if np.isnan(d) else round(d, 1))
                for row, d in zip(rows, days.tolist())]


def repo_horizons(repo: Path) -> tuple[int, ...]:
    """The repo's ``horizons:`` setting (the default where it cannot be read: the fields are
    empty for a model without horizons either way)."""
    try:
        return load_settings(repo).horizons
    except (OSError, ValueError):
        return DEFAULT_HORIZONS


def _mtime(path: Path | None) -> int | None:
    try:
        return None if path is None else path.stat().st_mtime_ns
    except FileNotFoundError:
        return None

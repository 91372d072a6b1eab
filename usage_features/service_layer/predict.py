"""Batch scoring of (customer, time) rows through Feast's historical path: any time, each row
its own; rows that cannot be read are kept, marked ``invalid`` with their reason.

Adds to each row ``status`` (``active``, ``churned``, ``incomplete``, ``unknown``,
``invalid``; see
:mod:`usage_features.domain.status`), ``churn_probability``, ``churn_probability_<days>d`` for
each longer horizon and ``expected_days_to_churn`` (each null unless active; the horizons' null
for a model without them),
``beyond_data`` (the row's time is after the latest ingested event: its features assume no
activity since) and ``error`` (why an incomplete or invalid row has no probability).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from usage_features.adapters.customers_table import ChurnDates
from usage_features.adapters.event_log import EventLog
from usage_features.adapters.stored_files import stored_files
from usage_features.domain.scores import horizon_field
from usage_features.domain.status import ACTIVE, INCOMPLETE, INVALID
from usage_features.features.request_time import epoch_seconds, statuses
from usage_features.features.retrieval import TIMESTAMP, historical_features
from usage_features.features.spec import DAYS_SINCE_LAST_EVENT, TENURE_DAYS
from usage_features.service_layer.bootstrap import Context
from usage_features.serving.entities import read_entities
from usage_features.serving.freshness import Freshness, day_seconds, freshness, history_start
from usage_features.serving.scorer import incomplete_history, repo_horizons


class NoValidRows(ValueError):
    """Not one entity row could be read."""


@dataclass(frozen=True)
class PredictResult:
    rows: pd.DataFrame
    #: Reasons of the rows that could not be read, by row position.
    errors: dict[int, str]
    freshness: Freshness

    @property
    def beyond_data(self) -> int:
        return int(self.rows.beyond_data.sum())

    def counts(self) -> dict[str, int]:
        return dict(sorted(self.rows.status.value_counts().to_dict().items()))


@stored_files
def predict_file(context: Context, entities: Path, out: Path) -> PredictResult:
    """Score the rows of ``entities`` (a file) into ``out`` (``.parquet`` or ``.csv``)."""
    read = read_entities(entities)
    valid = read.rows[read.valid]
    if valid.empty:
        raise NoValidRows(f"{entities}: no valid entity rows ({len(read.errors):,} rejected)")
    scored = predict(context, valid)
    missing = [pd.NA] * int((~read.valid).sum())
    rejected = read.rows[~read.valid].assign(
        status=INVALID, churn_probability=float("nan"),
        beyond_data=pd.array(missing, dtype="boolean"),
        error=pd.Series(read.errors, dtype="string"))
    scored = pd.concat([scored, rejected]).sort_index() if len(rejected) else scored
    writer = scored.to_csv if out.suffix == ".csv" else scored.to_parquet
    writer(out, index=False)
    record = freshness(context.repo, valid[TIMESTAMP].max(), online=False,
                       max_lag=context.max_lag)
    return PredictResult(scored, read.errors, record)


@stored_files
def predict(context: Context, entities: pd.DataFrame) -> pd.DataFrame:
    """``entities`` (customer_id, a timezone-aware event_timestamp, ...) with each row's
    status, probability and ``beyond_data``, in order."""
    times = entities.get(TIMESTAMP)
    if times is None or not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise ValueError("entity rows need a timezone-aware event_timestamp column "
                         "(naive times are ambiguous)")
    paths, model = context.paths, context.model
    frame = historical_features(context.store, entities)
    moments = epoch_seconds(times)
    ids = entities["customer_id"].astype(str).tolist()
    history_from = history_start(paths)
    status = statuses(frame[DAYS_SINCE_LAST_EVENT].to_numpy(dtype=float),
                      frame[TENURE_DAYS].to_numpy(dtype=float),
                      ChurnDates(paths.customers).seconds(ids), moments,
                      day_seconds(history_from))
    # NaN (null in Parquet, empty in CSV) for a customer not scored
    predicted = model.predict_frame(frame)
    active = status == ACTIVE
    horizons = model.metadata.horizons.get("horizons") or repo_horizons(context.repo)
    latest = EventLog(paths).latest_event_at()
    out = entities.copy()
    out["status"] = status.astype(str)
    for column in ("churn_probability", *map(horizon_field, horizons),
                   "expected_days_to_churn"):
        values = (predicted[column].to_numpy(dtype=float) if column in predicted
                  else np.full(len(out), np.nan))
        out[column] = np.where(active, values, np.nan)
    out["beyond_data"] = pd.array((times > latest).to_numpy() if latest is not None
                                  else [True] * len(out), dtype="boolean")
    out["error"] = pd.Series(pd.NA, index=out.index, dtype="string")
    if (status == INCOMPLETE).any():  # (a history, then)
        out.loc[status == INCOMPLETE, "error"] = incomplete_history(history_from)
    return out

"""The worklist: the latest scores snapshot, one row per active customer, riskiest first.

Each row is the snapshot's score (probability, band, reasons) with what a customer-success
manager needs beside it, joined in: the change since the previous snapshot, the days since
the customer's last event and the tenure at the snapshot's time (what the model saw: the
latest event before the scoring day, from the build's daily aggregates, and the signup time,
through the same request-time functions the scorer runs), and the plan (the customers table).
The joined table is built once per snapshot (and customers table, and build), then each view
filters and pages it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from usage_features.adapters.daily_aggregates import DAY_SECONDS, latest_per_customer
from usage_features.config import risk_bands
from usage_features.features.request_time import days_since, epoch_seconds, tenure_days
from usage_features.features.spec import (
    DAYS_SINCE_LAST_EVENT,
    LAST_EVENT_AT,
    PLAN,
    SIGNUP_AT,
    TENURE_DAYS,
)
from usage_features.service_layer.pages.data import PageData, file_stamp

PAGE_SIZE = 50
ACTIVE = "active"


@dataclass(frozen=True)
class WorklistQuery:
    """Which rows: a risk band, a plan, a search in the ids (case-insensitive), a page."""

    band: str | None = None
    plan: str | None = None
    search: str | None = None
    page: int = 1
    page_size: int = PAGE_SIZE


@dataclass(frozen=True)
class WorklistRow:
    rank: int  # 1 for the highest probability of the whole snapshot
    customer_id: str
    churn_probability: float
    risk_band: str
    reasons: tuple[str, ...]
    #: The probability minus the previous snapshot's (None: not scored then).
    change: float | None
    #: Days since the customer's last event, and since signup, at the snapshot's time (the
    #: model's DAYS_SINCE_LAST_EVENT and TENURE_DAYS).
    idle_days: float | None
    tenure: float | None
    plan: str | None


@dataclass(frozen=True)
class Worklist:
    """One page of the worklist, and what the page says about the snapshot."""

    query: WorklistQuery
    rows: list[WorklistRow]
    snapshot_day: date | None = None
    previous_day: date | None = None
    #: When the snapshot's scores were computed, and the latest event behind them.
    scored_at: datetime | None = None
    latest_event_at: datetime | None = None
    #: Whether any score of the snapshot carried a freshness warning.
    stale_scores: int = 0
    total: int = 0  # active customers in the snapshot
    matching: int = 0  # after the filters
    pages: int = 1
    bands: list[str] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    #: What to run when there is no snapshot.
    hint: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def age_days(self) -> float | None:
        if self.scored_at is None:
            return None
        return (self.now - self.scored_at).total_seconds() / DAY_SECONDS


def no_snapshot_hint(repo) -> str:
    return (f"No scores snapshot yet in {repo}/data/scores. Once a model is trained "
            f"(`usage-features train --repo {repo}`), run `usage-features refresh --repo {repo} "
            "--inbox DIR` (the daily job): it scores every active customer and writes the "
            "day's snapshot this page shows.")


def worklist(data: PageData, query: WorklistQuery, now: datetime | None = None) -> Worklist:
    """The page of the worklist ``query`` asks for (the last page when it asks beyond it)."""
    table = worklist_table(data)
    now = now or datetime.now(UTC)
    if table is None:
        return Worklist(query, [], hint=no_snapshot_hint(data.context.repo), now=now)
    frame, info = table
    chosen = select(frame, query)
    size = max(1, query.page_size)
    pages = max(1, math.ceil(len(chosen) / size))
    page = min(max(1, query.page), pages)
    rows = to_rows(chosen.iloc[(page - 1) * size: page * size])
    return Worklist(
        WorklistQuery(query.band, query.plan, query.search, page, size), rows,
        snapshot_day=info["day"], previous_day=info["previous"], scored_at=info["as_of"],
        latest_event_at=info["latest_event_at"], stale_scores=info["stale"], total=len(frame),
        matching=len(chosen), pages=pages, bands=info["bands"], plans=info["plans"], now=now)


def worklist_rows(data: PageData, query: WorklistQuery) -> list[WorklistRow]:
    """Every row the query's filters select (no paging): what the CSV holds."""
    table = worklist_table(data)
    return [] if table is None else to_rows(select(table[0], query))


def select(frame: pd.DataFrame, query: WorklistQuery) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    if query.band:
        keep &= (frame.risk_band == query.band).to_numpy()
    if query.plan:
        keep &= (frame[PLAN] == query.plan).to_numpy()
    if query.search and query.search.strip():
        keep &= frame.search_key.str.contains(query.search.strip().casefold(),
                                              regex=False).to_numpy()
    return frame[keep]


def to_rows(frame: pd.DataFrame) -> list[WorklistRow]:
    def number(value) -> float | None:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) \
            else float(value)

    columns = [frame[c].tolist() for c in (
        "rank", "customer_id", "churn_probability", "risk_band", "reasons", "change",
        DAYS_SINCE_LAST_EVENT, TENURE_DAYS, PLAN)]
    return [WorklistRow(rank, customer, float(p), band, tuple(reasons), number(change),
                        number(recency), number(tenure), plan if isinstance(plan, str) else None)
            for rank, customer, p, band, reasons, change, recency, tenure, plan in zip(*columns)]


def worklist_table(data: PageData) -> tuple[pd.DataFrame, dict] | None:
    """The latest snapshot joined as the worklist shows it, riskiest first (None: no
    snapshot); built again only when the snapshot, the previous one, the customers table or
    the build changed."""
    days = data.snapshots.days()
    if not days:
        return None
    latest, previous = days[-1], (days[-2] if len(days) > 1 else None)
    paths = data.context.paths
    key = (latest, data.snapshots.stamp(latest), previous,
           previous and data.snapshots.stamp(previous), file_stamp(paths.customers),
           file_stamp(paths.daily))
    return data.cached("worklist", key, lambda: _build(data, latest, previous))


def _build(data: PageData, latest: date, previous: date | None) -> tuple[pd.DataFrame, dict]:
    snapshot = data.snapshots.frame(latest)
    as_of = snapshot.as_of.max()
    latest_event = snapshot.latest_event_at.max()
    stale = int((~snapshot.fresh.fillna(True).astype(bool)).sum())
    frame = snapshot[(snapshot.status == ACTIVE) & snapshot.churn_probability.notna()]
    frame = frame[["customer_id", "churn_probability", "risk_band", "reasons"]].copy()
    frame["reasons"] = [tuple(r) if r is not None else () for r in frame.reasons]
    ids = frame.customer_id.to_numpy(dtype=object)
    if previous is not None:
        frame["change"] = frame.churn_probability.to_numpy() - data.snapshots.day(
            previous).probabilities(ids)
    else:
        frame["change"] = np.nan
    moment = np.full(len(frame), pd.Timestamp(as_of).timestamp() if pd.notna(as_of) else np.nan)
    day = int(pd.Timestamp(as_of).timestamp() // DAY_SECONDS) if pd.notna(as_of) else 0
    with data.duckdb() as con:
        last = latest_per_customer(con, data.context.paths.daily, LAST_EVENT_AT, day).set_index(
            "customer_id")[LAST_EVENT_AT]
    frame[DAYS_SINCE_LAST_EVENT] = days_since(
        epoch_seconds(last.reindex(ids)), moment)
    customers = data.customers()
    # to the second, as the feature tables and the online store keep it (tenure agrees exactly)
    signup = customers[SIGNUP_AT].reindex(ids).dt.floor("s")
    frame[TENURE_DAYS] = tenure_days(epoch_seconds(signup), moment)
    frame[PLAN] = customers[PLAN].reindex(ids).to_numpy(dtype=object)
    order = np.lexsort((ids, -frame.churn_probability.to_numpy()))
    frame = frame.iloc[order].reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["search_key"] = frame.customer_id.str.casefold()
    present = set(frame.risk_band)
    bands = [b for b in risk_bands() if b in present] + sorted(present - set(risk_bands()))
    plans = sorted({p for p in frame[PLAN] if isinstance(p, str)})
    info = {"day": latest, "previous": previous,
            "as_of": None if pd.isna(as_of) else as_of.to_pydatetime(),
            "latest_event_at": None if pd.isna(latest_event) else latest_event.to_pydatetime(),
            "stale": stale, "bands": bands, "plans": plans}
    return frame, info


__all__ = ["PAGE_SIZE", "Worklist", "WorklistQuery", "WorklistRow", "no_snapshot_hint",
           "worklist", "worklist_rows", "worklist_table"]

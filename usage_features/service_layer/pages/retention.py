"""The retention page: Kaplan-Meier retention of the customers table, by monthly signup cohort
and by plan, with the number at risk.

Each customer is followed from signup to churn, or censored at the data's latest time (the
latest ingested event; the customers table's latest date without events), never at the wall
clock: a customer of a repo whose data stops in June is not "retained" through December. The
estimator is lifelines' ``KaplanMeierFitter``; the curves are read at whole months since signup
(30.44 days). Computed once per customers table and event log version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from usage_features.adapters.event_log import EventLog
from usage_features.features.spec import PLAN, SIGNUP_AT
from usage_features.service_layer.pages.data import PageData, file_stamp

MONTH_DAYS = 30.4375
DAY_SECONDS = 86_400.0
#: A group smaller than this gets a row in the table but no curve (too noisy to read).
MIN_CUSTOMERS = 5


@dataclass(frozen=True)
class RetentionPoint:
    month: int
    retained: float  # the Kaplan-Meier estimate of the share still a customer
    at_risk: int  # customers still followed at that month (not churned, not censored)


@dataclass(frozen=True)
class RetentionCurve:
    label: str
    customers: int
    churned: int
    points: list[RetentionPoint]


@dataclass(frozen=True)
class RetentionView:
    censored_at: datetime | None
    by_cohort: list[RetentionCurve] = field(default_factory=list)
    by_plan: list[RetentionCurve] = field(default_factory=list)
    months: int = 0
    hint: str | None = None


def retention_view(data: PageData) -> RetentionView:
    """Kaplan-Meier curves by monthly signup cohort and by plan."""
    paths = data.context.paths
    log = EventLog(paths)
    with log.snapshot() as files:
        newest = max((f.parent.name for f in files), default=None)
    key = (file_stamp(paths.customers), newest, len(files))
    return data.cached("retention", key, lambda: _compute(data, log))


def _compute(data: PageData, log: EventLog) -> RetentionView:
    customers = data.customers().reset_index()
    if customers.empty:
        repo = data.context.repo
        return RetentionView(None, hint=f"No customers table in {repo}: run `usage-features "
                                        f"load-customers FILE --repo {repo}`.")
    censor = log.latest_event_at()
    if censor is None:
        censor = pd.concat([customers[SIGNUP_AT], customers.churned_at]).max().to_pydatetime()
    signed = customers[customers[SIGNUP_AT] <= pd.Timestamp(censor)].copy()
    end = signed.churned_at.where(signed.churned_at <= pd.Timestamp(censor), pd.Timestamp(censor))
    signed["duration"] = (end - signed[SIGNUP_AT]).dt.total_seconds() / DAY_SECONDS
    signed["churned"] = signed.churned_at.notna() & (signed.churned_at <= pd.Timestamp(censor))
    signed["cohort"] = signed[SIGNUP_AT].dt.strftime("%Y-%m")
    by_cohort = [_curve(label, rows) for label, rows in signed.groupby("cohort", sort=True)]
    plans = signed[signed[PLAN].notna()]
    by_plan = [_curve(str(label), rows) for label, rows in plans.groupby(PLAN, sort=True)]
    months = max((p.month for c in by_cohort + by_plan for p in c.points), default=0)
    return RetentionView(censor, by_cohort, by_plan, months)


def _curve(label: str, rows: pd.DataFrame) -> RetentionCurve:
    # deferred: lifelines (and autograd, scipy's optimisers) take ~1 s to import; only this
    # page needs it, once per customers table
    from lifelines import KaplanMeierFitter

    durations = rows.duration.to_numpy(dtype=float)
    events = rows.churned.to_numpy(dtype=bool)
    points = []
    if len(rows) >= MIN_CUSTOMERS:
        fitter = KaplanMeierFitter().fit(durations, events)
        last = int(durations.max() // MONTH_DAYS)
        times = np.arange(last + 1) * MONTH_DAYS
        retained = fitter.survival_function_at_times(times).to_numpy()
        points = [RetentionPoint(month, float(r), int((durations >= t).sum()))
                  for month, (t, r) in enumerate(zip(times, retained))]
    return RetentionCurve(label, len(rows), int(events.sum()), points)


__all__ = ["RetentionCurve", "RetentionPoint", "RetentionView", "retention_view"]

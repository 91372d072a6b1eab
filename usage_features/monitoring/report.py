"""The checks of ``usage-features monitor`` (run by :mod:`usage_features.service_layer.monitor`)
and its report: can today's scores still be trusted?

Six checks over the latest score snapshot (``refresh`` writes them), each with its alarms:

- **freshness**: the latest event, the last build and the last materialize, against a lag;
- **feature drift**: per served feature, the PSI between the model's validation-period rows
  (the latest rows it was trained and checked on, each moved to the snapshot's weekday and
  time of day: recency follows the weekly cycle) and the snapshot's customers' features at
  the snapshot's time, plus each side's share of nulls (a feature that grows with the
  calendar by construction, tenure, is reported but raises no alarm);
- **score drift**: the PSI of the snapshot's scores against the model's scores of those
  validation rows;
- **training/serving skew**: for a sample of the snapshot's customers, the online features
  (read as the scorer reads them) must equal the historical path's, value for value;
- **new event names**: names in the last 30 days' events that the model's training window
  never had (an undeclared name counted as "other", or a type it never saw);
- **realized performance**: for snapshots at least ``horizon`` days old, ROC AUC, PR AUC and
  top-decile lift against the churn that then happened (the customers table), beside the
  validation figures; the same for each longer horizon's probability once its window passed
  (score drift too is checked per horizon).

The report is ``DIR/data/reports/monitor/<date>/`` (``monitor.md`` with PNG plots, and
``monitor.json``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from usage_features.adapters.event_log import EventLog
from usage_features.adapters.score_snapshots import read_snapshots
from usage_features.adapters.stored_files import reading
from usage_features.config import RepoPaths
from usage_features.domain.capacity import Capacity
from usage_features.features.retrieval import read_online
from usage_features.monitoring.drift import Drift
from usage_features.monitoring.plots import (
    plot_feature_drift,
    plot_realized,
    plot_score_distributions,
)
from usage_features.training.evaluate import metrics

DEFAULT_SKEW_SAMPLE = 500
#: How far back ``monitor`` looks for event names the model was not trained on.
NEW_NAMES_DAYS = 30


@dataclass
class MonitorReport:
    snapshot_day: str | None
    now: datetime
    freshness: dict = field(default_factory=dict)
    feature_drift: list[dict] = field(default_factory=list)
    score_psi: float | None = None
    #: Per longer horizon's field (``churn_probability_60d``...): the PSI of today's against
    #: the validation rows' (none for a model without horizons).
    horizon_psi: dict[str, float] = field(default_factory=dict)
    skew: dict = field(default_factory=dict)
    realized: list[dict] = field(default_factory=list)
    #: The same per longer horizon (``horizon_days`` in each entry), once its window passed.
    realized_by_horizon: list[dict] = field(default_factory=list)
    #: Event names in the last NEW_NAMES_DAYS days that the model's training data never had.
    new_event_names: dict[str, int] = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    alarms: list[str] = field(default_factory=list)
    report_dir: str | None = None

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=str))


def new_event_names(paths: RepoPaths, trained_on: dict[str, int] | None, now: datetime
                    ) -> dict[str, int]:
    """Events per name in the last :data:`NEW_NAMES_DAYS` days, for the names the model's
    training window never had (none for a model that did not record its names)."""
    if trained_on is None:
        return {}
    recent = EventLog(paths).event_names(first=(now - timedelta(days=NEW_NAMES_DAYS)).date(),
                                         last=now.date())
    return {name: n for name, n in recent.items() if name not in trained_on}


def same_weekday_and_time(rows: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """``rows`` each moved forward by less than a week, to ``as_of``'s weekday and time of day.

    Usage has a weekly cycle (quiet weekends), so recency at Monday 00:00 is longer than at
    Thursday 00:00 for the same customers: a snapshot is compared with the validation rows
    as they stood at its own point of the week, not with whatever weekday the training grid
    fell on.
    """
    week = pd.Timedelta(days=7)
    moved = rows[["customer_id", "event_timestamp"]].copy()
    moved["event_timestamp"] += (pd.Timestamp(as_of) - moved.event_timestamp) % week
    return moved


def skew(store, historical: pd.DataFrame, features: list[str], as_of: datetime,
         materialized: datetime | None, sample: int) -> dict:
    """Online features against the historical path's for up to ``sample`` customers."""
    if materialized is None or materialized.date() != as_of.date():
        return {"skipped": f"the online store holds {materialized}, not the snapshot's day "
                           f"{as_of.date()}: compare right after the refresh"}
    chosen = historical.sample(min(sample, len(historical)), random_state=0)
    online = read_online(store, chosen.customer_id.tolist(), as_of).to_frame()
    differs, mismatch = {}, np.zeros(len(chosen), dtype=bool)
    for name in features:
        left = pd.to_numeric(online[name], errors="coerce").to_numpy(dtype=float)
        right = pd.to_numeric(chosen[name], errors="coerce").to_numpy(dtype=float)
        same = (left == right) | (np.isnan(left) & np.isnan(right))
        if not same.all():
            differs[name] = int((~same).sum())
        mismatch |= ~same
    return {"compared_customers": len(chosen), "features": differs,
            "mismatched_customers": int(mismatch.sum())}


def scored_history(paths: RepoPaths) -> pd.DataFrame | None:
    """Every snapshot's rows with each customer's ``churned_at`` from the customers table (None
    without one): what :func:`realized_performance` labels."""
    if not paths.customers.exists():
        return None
    with reading(paths.customers):
        customers = pd.read_parquet(paths.customers, columns=["customer_id", "churned_at"])
    scored = read_snapshots(paths.scores).drop(columns="churned_at")  # (only active rows)
    return scored.merge(customers, on="customer_id", how="left")


def realized_performance(paths: RepoPaths, horizon_days: int, now: datetime,
                         capacity: Capacity | None = None,
                         column: str = "churn_probability",
                         history: pd.DataFrame | None = None) -> list[dict]:
    """Metrics of the snapshots' ``column`` (the probability of churn within
    ``horizon_days``) for every snapshot whose label window ``(as_of, as_of + horizon]`` has
    passed (precision and recall at ``capacity`` among them: the snapshot is one scoring
    date); rows without that probability (scored before the model had it) are left out.
    ``history``: :func:`scored_history`, when already read (one read for every horizon)."""
    history = scored_history(paths) if history is None else history
    if history is None or column not in history:
        return []
    history = history[history[column].notna()]
    horizon = pd.Timedelta(days=horizon_days)
    out = []
    for day, rows in history.groupby("date"):
        as_of = rows.as_of.max()
        if as_of + horizon > pd.Timestamp(now):
            continue
        label = ((rows.churned_at > rows.as_of) & (rows.churned_at <= rows.as_of + horizon))
        y = label.to_numpy(dtype=int)
        entry = {"date": str(day), "rows": len(rows), "churned": int(y.sum())}
        if 0 < y.sum() < len(y):
            entry.update({k: v for k, v in metrics(
                y, rows[column].to_numpy(), np.full(len(y), str(day)), capacity
            ).items() if k != "brier"})
        out.append(entry)
    return out


def drift_alarm(drift: Drift) -> str:
    return (f"feature drift: {drift.feature} PSI {drift.psi:.3f}, nulls "
            f"{drift.reference_null_share:.1%} -> {drift.current_null_share:.1%}")


def write_report(report: MonitorReport, reference: pd.DataFrame, snapshot: pd.DataFrame,
                 out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plot_feature_drift(report.feature_drift, out / "feature_drift.png")
    plot_score_distributions(reference.churn_probability, snapshot.churn_probability,
                             out / "score_distribution.png")
    plot_realized(report.realized, report.validation, out / "realized_performance.png")
    (out / "monitor.json").write_text(json.dumps(report.to_dict(), indent=1))
    (out / "monitor.md").write_text(markdown(report))


def markdown(report: MonitorReport) -> str:
    f = report.freshness
    lines = [f"# Monitor: scores of {report.snapshot_day}", "",
             "**Alarms:** " + ("none" if not report.alarms else ""), *(
                 f"- {a}" for a in report.alarms), "",
             "## Freshness", "", f"- latest event: {f.get('latest_event_at')}",
             f"- last build: {f.get('last_build_at')}",
             f"- online store materialized through: {f.get('materialized_through')} "
             f"(last run {f.get('last_materialize_at')})",
             f"- expected lag: at most {f.get('max_lag_hours')} h", "",
             "## Feature drift (validation period -> today)", "",
             "![feature drift](feature_drift.png)", "",
             "| feature | PSI | nulls then | nulls now | alarm |", "|---|---|---|---|---|"]
    for d in report.feature_drift:
        note = "yes" if d["alarm"] else ("grows with time" if d["grows_with_time"] else "")
        lines.append(f"| {d['feature']} | {d['psi']:.3f} | {d['reference_null_share']:.1%} | "
                     f"{d['current_null_share']:.1%} | {note} |")
    lines += ["", "## Score drift", "",
              f"PSI of today's scores against the validation period's: {report.score_psi:.3f}",
              "", "![scores](score_distribution.png)", "",
              "## Training/serving skew", "", f"{report.skew}", "",
              "## Realized performance", "", "![realized](realized_performance.png)", "",
              "| snapshot | rows | churned | ROC AUC | PR AUC | precision at capacity | "
              "recall at capacity | top-decile lift |",
              "|---|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for r in report.realized:
        lines.append(f"| {r['date']} | {r['rows']} | {r['churned']} | "
                     f"{r.get('roc_auc', nan):.3f} | {r.get('pr_auc', nan):.3f} | "
                     f"{r.get('precision_at_capacity', nan):.3f} | "
                     f"{r.get('recall_at_capacity', nan):.3f} | "
                     f"{r.get('top_decile_lift', nan):.2f} |")
    if report.horizon_psi:
        lines += ["", "Longer horizons, PSI of today's against the validation period's: "
                  + ", ".join(f"{c} {v:.3f}" for c, v in report.horizon_psi.items()) + "."]
    if report.realized_by_horizon:
        lines += ["", "At the longer horizons (each once its window has passed):", "",
                  "| snapshot | horizon | rows | churned | ROC AUC | PR AUC | "
                  "precision at capacity |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['date']} | {r['horizon_days']} d | {r['rows']} | {r['churned']} | "
                  f"{r.get('roc_auc', nan):.3f} | {r.get('pr_auc', nan):.3f} | "
                  f"{r.get('precision_at_capacity', nan):.3f} |"
                  for r in report.realized_by_horizon]
    v = report.validation
    if v:
        lines += ["", (f"Validation: ROC AUC {v['roc_auc']:.3f}, PR AUC {v['pr_auc']:.3f}, "
                       f"precision at capacity {v.get('precision_at_capacity', nan):.3f}, "
                       f"top-decile lift {v['top_decile_lift']:.2f}.")]
    return "\n".join(lines) + "\n"

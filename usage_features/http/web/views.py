"""From a page's typed result to what its template draws: the charts, and the CSV.

Presentation only: the numbers come from the use cases in
:mod:`usage_features.service_layer.pages`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date

from usage_features.features.spec import DAYS_SINCE_LAST_EVENT, PLAN, TENURE_DAYS
from usage_features.http.web.charts import (
    Chart,
    horizontal_bars,
    line_chart,
    percent_label,
    stacked_bars,
)
from usage_features.service_layer.pages.customer import CustomerView
from usage_features.service_layer.pages.model import ModelView
from usage_features.service_layer.pages.monitor import MonitorView
from usage_features.service_layer.pages.retention import RetentionCurve, RetentionView
from usage_features.service_layer.pages.worklist import WorklistRow

#: The first characters that make a spreadsheet read a cell as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("rank", "customer_id", "churn_probability", "risk_band", "reasons",
               "change_since_previous", DAYS_SINCE_LAST_EVENT, TENURE_DAYS, PLAN)


def spreadsheet_safe(text: str | None) -> str:
    """``text`` as a cell no spreadsheet runs: a leading ``= + - @``, tab or carriage return
    gets an apostrophe in front (OWASP's advice for CSV injection)."""
    if not text:
        return ""
    return "'" + text if text.startswith(FORMULA_START) else text


def worklist_csv(rows: Sequence[WorklistRow]) -> str:
    """The rows as CSV: numbers as numbers, text cells neutralised, reasons in one cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)

    def number(value: float | None, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    for r in rows:
        writer.writerow([r.rank, spreadsheet_safe(r.customer_id), f"{r.churn_probability:.6f}",
                         spreadsheet_safe(r.risk_band), spreadsheet_safe("; ".join(r.reasons)),
                         number(r.change, 6), number(r.idle_days, 2), number(r.tenure, 2),
                         spreadsheet_safe(r.plan)])
    return out.getvalue()


def short_day(day: date) -> str:
    return day.strftime("%b %d")


def customer_charts(view: CustomerView) -> dict[str, Chart]:
    weekly = view.weekly
    events = stacked_bars(
        "weekly-events", f"Events per week (Monday to Sunday) by type, the {len(weekly.weeks)} "
        f"weeks up to {weekly.last_day or weekly.weeks[-1]:%Y-%m-%d}",
        [f"{w:%Y-%m-%d}" for w in weekly.weeks], weekly.types,
        weekly.counts, y_label="events", unit=" events", label_every=4)
    history = view.history
    if history:
        first, last = history[0].day.toordinal(), history[-1].day.toordinal()
        ticks = _date_ticks([h.day for h in history])
        scores = line_chart(
            "score-history", "Churn probability on each snapshot day",
            [("", [(h.day.toordinal(), h.probability,
                    f"{h.day:%Y-%m-%d}: {h.probability:.1%} ({h.band})") for h in history])],
            (first - 0.5, last + 0.5) if first == last else (first, last),
            y_top=_probability_top(max(h.probability for h in history)),
            x_ticks=ticks, y_label="churn probability")
    else:
        scores = line_chart("score-history", "Churn probability on each snapshot day", [],
                            (0, 1))
    return {"events": events, "scores": scores}


def _probability_top(highest: float) -> float:
    return min(1.0, max(0.1, round(highest * 1.2 + 0.05, 1)))


def _date_ticks(days: Sequence[date], most: int = 6) -> list[tuple[float, str]]:
    step = max(1, len(days) // most)
    return [(d.toordinal(), short_day(d)) for d in days[::step]]


def model_charts(view: ModelView) -> dict[str, Chart]:
    top = _probability_top(max([p.x for p in view.calibration] + [p.y for p in view.calibration]
                               + [0.1]))
    calibration = line_chart(
        "calibration", "Calibration: predicted against observed churn (validation, "
        "decile bins)",
        [("model", [(p.x, p.y, f"predicted {p.x:.1%}, observed {p.y:.1%} ({p.rows:,} rows)")
                    for p in view.calibration])],
        (0, top), y_top=top, diagonal=True,
        x_ticks=[(top * i / 4, percent_label(top * i / 4)) for i in range(5)],
        x_label="predicted churn probability", y_label="observed churn")
    pr = line_chart(
        "precision-recall", "Precision against recall (validation)",
        [("model", [(p.x, p.y, f"recall {p.x:.0%}: precision {p.y:.1%}")
                    for p in view.precision_recall])],
        (0, 1), y_top=1.0, guides=[view.base_rate] if view.base_rate is not None else [],
        x_ticks=[(i / 4, f"{i / 4:.0%}") for i in range(5)], x_label="recall",
        y_label="precision")
    importance = horizontal_bars(
        "importance", "Feature groups: drop in validation ROC AUC when their features are "
        "shuffled (summed)", [(g.group, g.auc_drop, i) for i, g in enumerate(view.importance)],
        x_label="ROC AUC drop", fmt="{:.4f}")
    return {"calibration": calibration, "pr": pr, "importance": importance}


def monitor_charts(view: MonitorView) -> dict[str, Chart]:
    drift = horizontal_bars(
        "feature-drift", "Population stability index per feature (dashed: the alarm "
        "threshold, 0.25)",
        [(d.feature, d.psi, 3 if d.alarm else (1 if d.grows_with_time else 0))
         for d in view.drift], x_label="PSI", limit=0.25)
    realized = [r for r in view.realized if "roc_auc" in r]
    days = [date.fromisoformat(r["date"]) for r in realized]
    series = [(metric, [(d.toordinal(), float(r[metric]), f"{d}: {metric} {r[metric]:.3f}")
                        for d, r in zip(days, realized)]) for metric in ("roc_auc", "pr_auc")]
    performance = line_chart(
        "realized", "Realized ROC AUC and PR AUC per snapshot (dashed: validation)",
        series if realized else [],
        (min(d.toordinal() for d in days) - 1, max(d.toordinal() for d in days) + 1)
        if days else (0, 1), y_top=1.0, x_ticks=_date_ticks(days),
        guides=[float(view.validation[m]) for m in ("roc_auc", "pr_auc")
                if m in view.validation] if realized else [])
    return {"drift": drift, "realized": performance}


def retention_chart(name: str, title: str, curves: Sequence[RetentionCurve], months: int
                    ) -> Chart:
    series = [(c.label, [(p.month, p.retained, f"{c.label}, month {p.month}: "
                          f"{p.retained:.1%} retained, {p.at_risk:,} at risk")
                         for p in c.points]) for c in curves if c.points]
    return line_chart(name, title, series, (0, max(months, 1)), y_top=1.0, steps=True,
                      x_ticks=[(m, str(m)) for m in range(0, months + 1,
                                                          max(1, (months + 1) // 12))],
                      x_label="months since signup", y_label="still a customer")


def retention_charts(view: RetentionView) -> dict[str, Chart]:
    return {"cohort": retention_chart("retention-cohort", "Retention by monthly signup cohort",
                                      view.by_cohort, view.months),
            "plan": retention_chart("retention-plan", "Retention by plan", view.by_plan,
                                    view.months)}


__all__ = ["CSV_COLUMNS", "customer_charts", "model_charts", "monitor_charts",
           "retention_charts", "spreadsheet_safe", "worklist_csv"]

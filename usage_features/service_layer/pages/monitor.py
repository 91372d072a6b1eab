"""The monitor page: the latest stored ``usage-features monitor`` report, alarms first.

The page reads the report ``monitor`` wrote (``DIR/data/reports/monitor/<day>/monitor.json``)
and never runs the checks itself (a run reads the event log and the validation rows: seconds,
not a page view's milliseconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from usage_features.service_layer.pages.data import PageData, file_stamp

REPORT_FILE = "monitor.json"


@dataclass(frozen=True)
class DriftRow:
    feature: str
    psi: float
    reference_null_share: float
    current_null_share: float
    alarm: bool
    grows_with_time: bool


@dataclass(frozen=True)
class MonitorView:
    """The latest report (``day`` None and ``hint`` when there is none)."""

    day: str | None
    path: str | None = None
    ran_at: str | None = None
    alarms: list[str] = field(default_factory=list)
    freshness: dict = field(default_factory=dict)
    drift: list[DriftRow] = field(default_factory=list)  # alarms first, then by PSI
    score_psi: float | None = None
    skew: dict = field(default_factory=dict)
    realized: list[dict] = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    new_event_names: dict[str, int] = field(default_factory=dict)
    hint: str | None = None


def latest_report(reports: Path) -> Path | None:
    """The newest ``<day>/monitor.json`` under ``reports/monitor`` (None: no report)."""
    found = sorted(Path(reports, "monitor").glob(f"*/{REPORT_FILE}"),
                   key=lambda p: p.parent.name)
    return found[-1] if found else None


def monitor_view(data: PageData) -> MonitorView:
    """The latest stored monitor report, read once per version of its file."""
    repo = data.context.repo
    path = latest_report(data.context.paths.reports)
    if path is None:
        return MonitorView(None, hint=(
            f"No monitor report yet in {repo}/data/reports/monitor. Run `usage-features monitor "
            f"--repo {repo}` after the day's `refresh` (the daily loop in docs/operations.md)."))
    return data.cached("monitor", (path, file_stamp(path)), lambda: _read(path))


def _read(path: Path) -> MonitorView:
    report = json.loads(path.read_text())
    drift = [DriftRow(d["feature"], float(d["psi"]), float(d["reference_null_share"]),
                      float(d["current_null_share"]), bool(d["alarm"]),
                      bool(d.get("grows_with_time", False)))
             for d in report.get("feature_drift", [])]
    drift.sort(key=lambda d: (not d.alarm, -d.psi))
    return MonitorView(
        report.get("snapshot_day") or path.parent.name, str(path), report.get("now"),
        list(report.get("alarms", [])), dict(report.get("freshness") or {}), drift,
        report.get("score_psi"), dict(report.get("skew") or {}),
        list(report.get("realized") or []), dict(report.get("validation") or {}),
        dict(report.get("new_event_names") or {}))


__all__ = ["DriftRow", "MonitorView", "latest_report", "monitor_view"]

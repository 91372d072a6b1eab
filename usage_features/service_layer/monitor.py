"""Can today's scores be trusted? The checks of :mod:`usage_features.monitoring.report` over the
latest score snapshot: freshness, feature and score drift, training/serving skew, new event
names, realized performance; a report with plots, and the alarms."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import pandas as pd

from usage_features.adapters.score_snapshots import read_snapshot, snapshot_days
from usage_features.adapters.stored_files import reading, stored_files
from usage_features.domain.scores import horizon_field
from usage_features.features.retrieval import historical_features, store_spec
from usage_features.ingestion.settings import load_settings
from usage_features.monitoring.drift import PSI_ALARM, feature_drift, psi
from usage_features.monitoring.report import (
    DEFAULT_SKEW_SAMPLE,
    NEW_NAMES_DAYS,
    MonitorReport,
    drift_alarm,
    new_event_names,
    realized_performance,
    same_weekday_and_time,
    scored_history,
    skew,
    write_report,
)
from usage_features.service_layer.bootstrap import Context
from usage_features.serving.freshness import freshness
from usage_features.training.report import REFERENCE_FILE


@stored_files
def monitor(context: Context, now: datetime | None = None,
            skew_sample: int = DEFAULT_SKEW_SAMPLE) -> MonitorReport:
    """Check the latest snapshot as of ``now`` (default the snapshot's time); the report is
    written to ``DIR/data/reports/monitor/<date>/``."""
    paths = context.paths
    days = snapshot_days(paths.scores)
    if not days:
        raise FileNotFoundError(f"no score snapshots in {paths.scores}: run "
                                "`usage-features refresh` first")
    model = context.model
    snapshot = read_snapshot(paths.scores, days[-1])
    as_of = snapshot.as_of.max().to_pydatetime()
    now = now or as_of
    report = MonitorReport(snapshot_day=days[-1].isoformat(), now=now,
                           validation=model.metadata.metrics.get("model", {}))
    store = context.store

    record = freshness(paths.repo, now, context.config, store, context.max_lag)
    report.freshness = record.to_dict()
    report.alarms += [f"freshness: {warning}" for warning in record.warnings()]

    reference_file = paths.reports / model.metadata.model_version / REFERENCE_FILE
    with reading(reference_file):
        validation = pd.read_parquet(reference_file, columns=["customer_id", "event_timestamp"])
    reference = historical_features(store, same_weekday_and_time(validation, as_of))
    scores = model.predict_frame(reference)  # churn_probability and each horizon's
    for column in scores.columns.drop("expected_days_to_churn", errors="ignore"):
        reference[column] = scores[column].to_numpy()
    rows = pd.DataFrame({"customer_id": snapshot.customer_id, "event_timestamp": snapshot.as_of})
    current = historical_features(store, rows)
    trending = {f.name for f in store_spec(store).served if f.grows_with_time}
    for name in model.metadata.features:
        drift = feature_drift(name, reference[name], current[name])
        alarm = drift.alarm and name not in trending
        report.feature_drift.append({**asdict(drift), "alarm": alarm,
                                     "grows_with_time": name in trending})
        if alarm:
            report.alarms.append(drift_alarm(drift))
    report.score_psi = psi(reference.churn_probability, snapshot.churn_probability)
    if report.score_psi >= PSI_ALARM:
        report.alarms.append(f"score drift: PSI {report.score_psi:.3f} of today's scores "
                             f"against the validation period's (alarm at {PSI_ALARM})")
    for horizon in model.horizon_days:
        column = horizon_field(horizon)
        if column not in snapshot or snapshot[column].isna().all():
            continue  # a snapshot scored before the model had this horizon
        report.horizon_psi[column] = psi(reference[column], snapshot[column])
        if report.horizon_psi[column] >= PSI_ALARM:
            report.alarms.append(f"score drift at {horizon} days: PSI "
                                 f"{report.horizon_psi[column]:.3f} of today's {column} "
                                 f"against the validation period's (alarm at {PSI_ALARM})")

    report.skew = skew(store, current, model.metadata.features, as_of,
                       record.materialized_through, skew_sample)
    if report.skew.get("mismatched_customers"):
        report.alarms.append(f"training/serving skew: {report.skew['mismatched_customers']} of "
                             f"{report.skew['compared_customers']} customers' online features "
                             f"differ from the historical path ({report.skew['features']})")

    report.new_event_names = new_event_names(paths, model.metadata.event_names, now)
    if report.new_event_names:
        listed = ", ".join(f"{name!r} ({n:,})" for name, n in report.new_event_names.items())
        report.alarms.append(
            f"event names new since training, events in the last {NEW_NAMES_DAYS} days: "
            f"{listed}; declare them in usage_features.yaml (or check the export) and retrain")

    capacity = load_settings(paths.repo).capacity
    history = scored_history(paths)  # read once, labelled at each horizon
    report.realized = realized_performance(paths, model.metadata.horizon_days, now, capacity,
                                           history=history)
    report.realized_by_horizon = [
        {"horizon_days": horizon, **entry} for horizon in model.horizon_days
        for entry in realized_performance(paths, horizon, now, capacity, horizon_field(horizon),
                                          history)]
    out = paths.reports / "monitor" / report.snapshot_day
    write_report(report, reference, snapshot, out)
    report.report_dir = str(out)
    return report

"""The daily job's commands: refresh (and, beside it, monitor)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from usage_features.cli import (
    ConfigOption,
    MaxLagOption,
    RepoOption,
    app,
    bootstrap_or_fail,
    console,
    fail,
    out,
    require_extra,
    utc,
)


@app.command()
def refresh(
    repo: RepoOption,
    inbox: Annotated[Path | None, typer.Option(
        help="Folder of new event files; each file's content is ingested once. "
             "Default DIR/inbox.")] = None,
    now: Annotated[datetime | None, typer.Option(
        help="The time to refresh to (UTC); default the current time.")] = None,
    customers: Annotated[Path | None, typer.Option(
        help="Reload the customers table from this file first.")] = None,
    sink: Annotated[str | None, typer.Option(
        help="Also upsert the scores into PostgreSQL: postgresql://... (table churn_scores).")
    ] = None,
    max_lag_hours: MaxLagOption = None,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
    config: ConfigOption = "feature_store.yaml",
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """The daily job: ingest new inbox files, build, materialize, score every active customer.

    Writes DIR/data/scores/date=YYYY-MM-DD/scores.parquet. Exit status 1 on a freshness
    alarm, 2 on an error, 3 when another refresh of the repo is running.
    """
    if sink:
        require_extra("postgres", "refresh --sink")
    # deferred: the service layer loads scikit-learn, pandas, DuckDB (~1 s); --help must not wait
    from usage_features.service_layer.refresh import RefreshBusyError
    from usage_features.service_layer.refresh import refresh as run_refresh

    context = bootstrap_or_fail(repo, config, model, max_lag_hours, sink)
    with console.status("refresh") as status:
        try:
            summary = run_refresh(context, inbox, utc(now) if now else None, customers,
                                  progress=status.update)
        except RefreshBusyError as exc:
            console.print(f"[yellow]busy:[/yellow] {exc}")
            raise typer.Exit(code=3) from None
        except (FileNotFoundError, ValueError) as exc:
            raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(summary.to_dict()))
    else:
        out.print(
            f"refreshed to {summary.now:%Y-%m-%d %H:%M} UTC: {len(summary.files_ingested)} "
            f"new file(s), {summary.events_accepted:,} events accepted "
            f"({summary.events_rejected:,} rejected); scored {summary.scored:,} of "
            f"{summary.active_customers:,} active customers -> "
            + ", ".join(f"{name} ({n:,})" for name, n in summary.delivered.items())
            + f" in {sum(summary.seconds.values()):.1f} s")
        for reason, n in summary.not_scored.items():
            console.print(f"[yellow]not scored:[/yellow] {n:,} customer(s): {reason}")
    for alarm in summary.alarms:
        console.print(f"[red]alarm:[/red] {alarm}")
    if summary.alarms:
        raise typer.Exit(code=1)


@app.command()
def monitor(
    repo: RepoOption,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
    now: Annotated[datetime | None, typer.Option(
        help="The time to judge freshness and realized performance at (UTC); default the "
             "latest snapshot's time.")] = None,
    max_lag_hours: MaxLagOption = None,
    config: ConfigOption = "feature_store.yaml",
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Can today's scores be trusted? Freshness, feature and score drift, skew, realized
    performance: a Markdown report with plots, and JSON. Exit status 1 when an alarm fires."""
    require_extra("report", "usage-features monitor")
    # deferred: the service layer loads scikit-learn, pandas, DuckDB (~1 s); --help must not wait
    from usage_features.service_layer.monitor import monitor as run_monitor

    context = bootstrap_or_fail(repo, config, model, max_lag_hours)
    with console.status("monitor"):
        try:
            report = run_monitor(context, utc(now) if now else None)
        except (FileNotFoundError, ValueError) as exc:
            raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        out.print(f"monitor of the {report.snapshot_day} scores: "
                  f"{len(report.alarms)} alarm(s); report {report.report_dir}/monitor.md")
    for alarm in report.alarms:
        console.print(f"[red]alarm:[/red] {alarm}")
    if report.alarms:
        raise typer.Exit(code=1)

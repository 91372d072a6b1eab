"""The daily job's commands: refresh (and, beside it, monitor)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from usage_features.cli import (
    ConfigOption,
    Engine,
    EngineOption,
    MaxLagOption,
    RepoOption,
    SparkMasterOption,
    app,
    bootstrap_or_fail,
    console,
    fail,
    out,
    plain,
    require_extra,
    utc,
)
from usage_features.extras import MissingExtraError, require

#: refresh's exit statuses (a scheduler reads them, and the JSON object's ``status``).
EXIT_DONE, EXIT_ALARMS, EXIT_ERROR, EXIT_BUSY = 0, 1, 2, 3


@app.command()
def refresh(
    repo: RepoOption,
    inbox: Annotated[Path | None, typer.Option(
        help="Folder of new event files; each complete file's content is ingested once. "
             "Default DIR/inbox.")] = None,
    now: Annotated[datetime | None, typer.Option(
        help="The time to refresh to (UTC); default the current time.")] = None,
    customers: Annotated[Path | None, typer.Option(
        help="Reload the customers table from this file first.")] = None,
    sink: Annotated[str | None, typer.Option(
        help="Also upsert the scores into PostgreSQL: postgresql://... (table churn_scores).")
    ] = None,
    max_lag_hours: MaxLagOption = None,
    settle_seconds: Annotated[float, typer.Option(
        min=0.0, help="Take an inbox file only when it was last modified at least this many "
                      "seconds ago (by the wall clock); 0: no settle time.")] = 0.0,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
    engine: EngineOption = Engine.duckdb,
    spark_master: SparkMasterOption = None,
    config: ConfigOption = "feature_store.yaml",
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as one JSON object (on every exit status).")] = False,
) -> None:
    """The daily job: ingest new inbox files, build, materialize, score every active customer.

    Writes DIR/data/scores/date=YYYY-MM-DD/scores.parquet. Exit status 0 done, 1 done with
    alarms (freshness, inbox files set aside or refused, rejected rows), 2 error (the day was
    not done), 3 busy (another refresh of the repo is running).
    """
    # deferred: the service layer loads scikit-learn, pandas, DuckDB (~1 s); --help must not wait
    from usage_features.adapters.sql_engine import EngineUnavailable
    from usage_features.service_layer.bootstrap import bootstrap
    from usage_features.service_layer.refresh import RefreshBusyError
    from usage_features.service_layer.refresh import refresh as run_refresh

    moment = utc(now) if now else None
    if spark_master and engine is not Engine.spark:
        raise _stopped(as_json, moment, EXIT_ERROR, "--spark-master is for --engine spark "
                       "(the duckdb engine runs in process)")
    try:
        if sink:
            require("postgres", "refresh --sink")
        context = bootstrap(repo, config, model, max_lag_hours, sink)
        with console.status("refresh") as status:
            summary = run_refresh(context, inbox, moment, customers, progress=status.update,
                                  settle_seconds=settle_seconds, engine=engine.value,
                                  spark_master=spark_master)
    except RefreshBusyError as exc:
        raise _stopped(as_json, moment, EXIT_BUSY, str(exc)) from None
    except (MissingExtraError, EngineUnavailable, ValueError, OSError) as exc:
        raise _stopped(as_json, moment, EXIT_ERROR, str(exc)) from None
    except Exception as exc:  # a bug: its traceback for the report, and still the one object
        console.print_exception()
        raise _stopped(as_json, moment, EXIT_ERROR,
                       f"unexpected {type(exc).__name__}: {exc}") from None
    code = EXIT_ALARMS if summary.alarms else EXIT_DONE
    if as_json:
        print(json.dumps({**summary.to_dict(), "exit_status": code}))
    else:
        waiting = len(summary.files_waiting)
        out.print(
            f"refreshed to {summary.now:%Y-%m-%d %H:%M} UTC: {len(summary.files_ingested)} "
            f"new file(s)" + (f" ({waiting} waiting)" if waiting else "")
            + f", {summary.events_accepted:,} events accepted "
            f"({summary.events_rejected:,} rejected); scored {summary.scored:,} of "
            f"{summary.active_customers:,} active customers -> "
            + ", ".join(f"{plain(name)} ({n:,})" for name, n in summary.delivered.items())
            + f" in {sum(summary.seconds.values()):.1f} s")
        for name, why in summary.files_waiting.items():
            console.print(f"[yellow]waiting:[/yellow] {plain(name)}: {plain(why)}")
        for reason, n in summary.not_scored.items():
            console.print(f"[yellow]not scored:[/yellow] {n:,} customer(s): {plain(reason)}")
    for alarm in summary.alarms:
        console.print(f"[red]alarm:[/red] {plain(alarm)}")
    if code:
        raise typer.Exit(code=code)


def _stopped(as_json: bool, now: datetime | None, code: int, message: str) -> typer.Exit:
    """Say why refresh stopped (a line, and with ``--json`` its one object) and return the
    exit to raise."""
    status = "busy" if code == EXIT_BUSY else "error"
    if as_json:
        print(json.dumps({"status": status, "exit_status": code, "error": message,
                          "now": now.isoformat() if now else None}))
    if code == EXIT_BUSY:
        console.print(f"[yellow]busy:[/yellow] {plain(message)}")
    else:
        console.print(f"[red]error:[/red] {plain(message)}")
    return typer.Exit(code=code)


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
        console.print(f"[red]alarm:[/red] {plain(alarm)}")
    if report.alarms:
        raise typer.Exit(code=1)

"""Commands that make data: simulate, ingest, events, load-customers, build."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from usage_features.cli import (
    ConfigOption,
    JsonOption,
    RepoOption,
    app,
    console,
    fail,
    out,
    progress_bar,
    utc,
)
from usage_features.config import RepoPaths


@app.command()
def simulate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for events.parquet and "
                                          "customers.parquet.")],
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 1000,
    days: Annotated[int, typer.Option(help="Length of the period in days.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
    start: Annotated[datetime, typer.Option(help="First day (UTC).",
                                            formats=["%Y-%m-%d"])] = datetime(2025, 1, 1),
    dirty_fraction: Annotated[float, typer.Option(
        help="Share of rows to corrupt (bad ids, duplicates, naive times...).")] = 0.0,
) -> None:
    """Simulate SaaS usage events and customers with known churn dynamics."""
    from usage_features.simulation import SimulationConfig, write_simulation
    from usage_features.simulation import simulate as run

    with console.status("simulating"):
        sim = run(SimulationConfig(customers=customers, days=days, seed=seed,
                                   start=start.date(), dirty_fraction=dirty_fraction))
        events_path, customers_path = write_simulation(sim, out_dir)
    churned = sim.customers.column("churned_at").null_count
    out.print(f"{sim.events.num_rows:,} events -> {events_path}")
    out.print(f"{sim.customers.num_rows:,} customers ({sim.customers.num_rows - churned:,} "
              f"churned) -> {customers_path}")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Parquet, CSV or JSON Lines files.")],
    repo: RepoOption,
    as_json: JsonOption = False,
) -> None:
    """Validate raw usage events and append the valid ones to the event log."""
    from usage_features.ingestion import REASONS, ingest_files
    from usage_features.ingestion.readers import InputError, count_rows_hint

    try:
        hints = [count_rows_hint(p) if p.is_file() else None for p in paths]
    except InputError as exc:
        raise fail(str(exc)) from None
    total = None if None in hints else sum(hints)
    with warnings.catch_warnings(record=True) as caught, progress_bar(total, "ingest") as bar:
        warnings.simplefilter("always")
        task = bar.add_task("ingest", total=total)
        try:
            summary = ingest_files(paths, RepoPaths(repo), on_rows=lambda n: bar.advance(task, n))
        except InputError as exc:
            raise fail(str(exc)) from None
    for warning in caught:
        console.print(f"[yellow]warning:[/yellow] {warning.message}")
    if as_json:
        out.print_json(json.dumps(summary.to_dict()))
        return
    table = Table(title=f"Ingested into {RepoPaths(repo).events}", show_header=False)
    for name in ("read", "accepted", "rejected", "duplicates"):
        table.add_row(name, f"{getattr(summary, name):,}")
    for code, n in summary.rejected_by_reason.items():
        table.add_row(f"  {code}", f"{n:,}", REASONS[code])
    out.print(table)
    for path in summary.quarantine_files:
        out.print(f"rejected rows and reasons: {path}")


@app.command()
def events(
    customer_id: str,
    repo: RepoOption,
    as_of: Annotated[
        datetime | None,
        typer.Option(help="Reference time (UTC) for the N-day counts; default now."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many of the latest events to list.")] = 10,
) -> None:
    """Show a customer's latest events and the 7/30/90-day counts the model is served.

    The counts follow the feature semantics: windows [D - N days, D), D the as-of time
    truncated to its UTC day, so they equal the served event_count_Nd at any time on D.
    """
    from usage_features.adapters.parquet_repository import ParquetUsageRepository
    from usage_features.serving.freshness import day_start

    as_of = utc(as_of) if as_of else datetime.now(timezone.utc)
    day = day_start(as_of)
    repository = ParquetUsageRepository(RepoPaths(repo))
    found = repository.get_events(customer_id)
    if not found:
        raise fail(f"no events for customer {customer_id!r} in {RepoPaths(repo).events}")
    shown = [e for e in found if e.timestamp <= as_of][-limit:]
    later = len(found) - len([e for e in found if e.timestamp <= as_of])
    table = Table(title=f"{customer_id}: {len(found):,} events, latest {len(shown)} at or "
                        f"before {as_of.isoformat()}")
    for column in ("timestamp", "event_type", "adoption"):
        table.add_column(column)
    for event in shown:
        table.add_row(str(event.timestamp), event.event_type.value,
                      f"{event.feature_adoption_score.value:.3f}")
    out.print(table)
    counts = {n: repository.count_events_last_n_days(customer_id, n, as_of=day)
              for n in (7, 30, 90)}
    out.print(f"served counts as of {as_of.isoformat()}: D = {day.date()}, windows "
              "[D - N days, D) (events on D count from the next day):")
    out.print(", ".join(f"{n}d: {c}" for n, c in counts.items()))
    today = len([e for e in found if day <= e.timestamp <= as_of])
    if today or later:
        out.print(f"not in these counts: {today} event(s) on {day.date()} up to as-of"
                  + (f", {later} after it" if later else ""))


@app.command("load-customers")
def load_customers_command(
    path: Annotated[Path, typer.Argument(help="customer_id, signup_at, churned_at, plan")],
    repo: RepoOption,
) -> None:
    """Validate the customers table and make it the repo's (replaces the previous one)."""
    from usage_features.ingestion.customers import load_customers
    from usage_features.ingestion.readers import InputError

    try:
        rows = load_customers(path, RepoPaths(repo))
    except InputError as exc:
        raise fail(str(exc)) from None
    out.print(f"loaded {rows:,} customers into {RepoPaths(repo).customers}")


class Engine(str, Enum):
    duckdb = "duckdb"
    spark = "spark"


@app.command()
def build(
    repo: RepoOption,
    engine: Annotated[Engine, typer.Option(
        help="duckdb: in process. spark: PySpark (the package's spark extra and Java 17+), "
             "configured by the repo's feature_store.spark.yaml or spark-submit.")
    ] = Engine.duckdb,
    config: ConfigOption = "feature_store.yaml",
    as_json: JsonOption = False,
) -> None:
    """Compute the feature tables from the event log (incrementally), then `feast apply`."""
    from usage_features.features.build import NoEventsError, build_features
    from usage_features.features.engines import EngineUnavailable
    from usage_features.features.store import apply_definitions

    with console.status(f"building features with {engine.value}") as status:
        try:
            summary = build_features(RepoPaths(repo), on_step=status.update,
                                     engine=engine.value)
        except (NoEventsError, EngineUnavailable) as exc:
            raise fail(str(exc)) from None
        status.update(f"feast apply ({config})")
        apply_definitions(repo, config)
    if as_json:
        out.print_json(json.dumps(summary.to_dict()))
        return
    if not summary.changed:
        out.print("feature tables are up to date (no new events)")
    else:
        out.print(f"folded in {summary.new_event_files} new event file(s): recomputed "
                  f"{summary.customers_recomputed:,} customer(s) from "
                  f"{summary.first_changed_day}; rewrote {len(summary.months_rewritten)} "
                  "month file(s)")
    share = summary.feature_rows / summary.customer_days if summary.customer_days else 0
    out.print(f"{summary.feature_rows:,} feature rows for {summary.customers:,} customers "
              f"({share:.1%} of {summary.customer_days:,} customer-days); feast apply done")

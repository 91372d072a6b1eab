"""Commands that make data: simulate, ingest, events, load-customers, build."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from usage_features.cli import (
    ConfigOption,
    Engine,
    EngineOption,
    JsonOption,
    RepoOption,
    SparkMasterOption,
    app,
    console,
    fail,
    out,
    plain,
    progress_bar,
    utc,
)
from usage_features.config import RepoPaths


class Mechanism(str, Enum):
    """The simulator's churn mechanisms (``usage_features.simulation.config.MECHANISMS``)."""

    default = "default"
    gradual = "gradual"


@app.command()
def simulate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for events.parquet and "
                                          "customers.parquet (see --vocabulary).")],
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 1000,
    days: Annotated[int, typer.Option(help="Length of the period in days.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
    start: Annotated[datetime, typer.Option(help="First day (UTC).",
                                            formats=["%Y-%m-%d"])] = datetime(2025, 1, 1),
    dirty_fraction: Annotated[float, typer.Option(
        help="Share of rows to corrupt (bad ids, duplicates, naive times...).")] = 0.0,
    vocabulary: Annotated[str | None, typer.Option(
        metavar="FILE|crm[:N]",
        help="Write the events as a foreign product's export in this vocabulary (a "
             "usage_features.yaml declaring events.types, or the built-in N-type CRM): "
             "events.csv and accounts.csv (no event ids, no adoption score), customers.parquet "
             "and the matching usage_features.yaml.")] = None,
    mechanism: Annotated[Mechanism, typer.Option(
        help="The churn mechanism: default, or gradual (usage halves every 14-56 days from "
             "the decision to leave, churn 14-120 days after it, each customer's own weekly "
             "rhythm).")] = Mechanism.default,
) -> None:
    """Simulate SaaS usage events and customers with known churn dynamics."""
    # deferred: the simulator loads pandas (~0.3 s); --help must not wait
    from usage_features.simulation import SimulationConfig, simulate_to_files

    config = SimulationConfig(customers=customers, days=days, seed=seed, start=start.date(),
                              dirty_fraction=dirty_fraction, mechanism=mechanism.value)
    if vocabulary is not None:
        # deferred: the simulator loads pandas (~0.3 s); --help must not wait
        from usage_features.domain.vocabulary import VocabularyError
        from usage_features.simulation import simulate as simulate_events
        from usage_features.simulation.foreign import vocabulary_from_spec, write_foreign_simulation

        if dirty_fraction > 0:
            raise fail("--dirty-fraction is for the usual events.parquet, not --vocabulary "
                       "(a foreign export has its own duplicates and spellings)")
        try:
            declared = vocabulary_from_spec(vocabulary)
        except (VocabularyError, ValueError) as exc:
            raise fail(str(exc)) from None
        with console.status("simulating"):
            sim = simulate_events(config)
            written = write_foreign_simulation(sim, declared, out_dir)
        out.print(f"{written.events:,} events ({len(declared.types)} types) -> "
                  f"{written.events_path}")
        churned = sim.customers.num_rows - sim.customers.column("churned_at").null_count
        out.print(f"{sim.customers.num_rows:,} customers ({churned:,} churned) -> "
                  f"{written.accounts_path}, {written.customers_path}")
        out.print(f"settings -> {written.settings_path}")
        return
    with console.status("simulating"):
        written = simulate_to_files(config, out_dir)
    out.print(f"{written.events:,} events -> {written.events_path}")
    out.print(f"{written.customers:,} customers ({written.churned:,} "
              f"churned) -> {written.customers_path}")


MapOption = Annotated[list[str] | None, typer.Option(
    "--map", metavar="SRC=DEST",
    help="Read the file's column SRC as DEST (repeatable). Overrides the mapping stored in "
         "the repo's usage_features.yaml.")]


def _mapping(repo: Path, flags: list[str] | None, section: str, targets) -> dict[str, str]:
    """The stored mapping for ``section`` overridden by ``--map`` flags, checked."""
    # deferred: the ingestion layer loads DuckDB and pyarrow (~0.3 s); --help must not wait
    from usage_features.ingestion.settings import (
        SettingsError,
        check_mapping,
        load_settings,
        merge_mappings,
        parse_map_flags,
    )

    try:
        stored = getattr(load_settings(repo), section)
        return check_mapping(merge_mappings(stored, parse_map_flags(flags or [])), targets)
    except SettingsError as exc:
        raise fail(str(exc)) from None


#: Exit status of ``ingest`` when rows were rejected beyond what is allowed (the valid rows
#: are still committed); 2 is an input or usage error with nothing written.
EXIT_TOO_MANY_REJECTED = 1


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Parquet, CSV or JSON Lines files.")],
    repo: RepoOption,
    as_json: JsonOption = False,
    column_map: MapOption = None,
    max_rejected_fraction: Annotated[float | None, typer.Option(
        min=0.0, max=1.0,
        help="Exit with status 1 when more than this share of the rows read is rejected "
             "(the valid rows are still committed).")] = None,
) -> None:
    """Validate raw usage events and append the valid ones to the event log.

    Exit status: 0 when the rows were ingested; 1 when every row read was rejected, or more
    than --max-rejected-fraction of them (the valid rows are committed all the same); 2 when
    nothing could be ingested (an unreadable file, a missing column, a bad --map).
    """
    # deferred: the ingestion layer loads DuckDB and pyarrow (~0.3 s); --help must not wait
    from usage_features.ingestion import REASONS
    from usage_features.ingestion.readers import InputError, count_rows_hint
    from usage_features.schema import EVENT_COLUMNS
    from usage_features.service_layer.ingest import ingest as ingest_events
    from usage_features.service_layer.ingest import too_many_rejected

    mapping = _mapping(repo, column_map, "event_columns", EVENT_COLUMNS)
    try:
        hints = [count_rows_hint(p) if p.is_file() else None for p in paths]
    except InputError as exc:
        raise fail(str(exc)) from None
    total = None if None in hints else sum(hints)
    with warnings.catch_warnings(record=True) as caught, progress_bar(total, "ingest") as bar:
        warnings.simplefilter("always")
        task = bar.add_task("ingest", total=total)
        try:
            summary = ingest_events(paths, RepoPaths(repo), columns=mapping,
                                    on_rows=lambda n: bar.advance(task, n))
        except InputError as exc:
            raise fail(str(exc)) from None
    for warning in caught:
        console.print(f"[yellow]note:[/yellow] {plain(warning.message)}")
    if as_json:
        out.print_json(json.dumps(summary.to_dict()))
    else:
        table = Table(title=f"Ingested into {RepoPaths(repo).events}", show_header=False)
        for name in ("read", "accepted", "rejected", "duplicates"):
            table.add_row(name, f"{getattr(summary, name):,}")
        for code, n in summary.rejected_by_reason.items():
            table.add_row(f"  {code}", f"{n:,}", REASONS[code])
        out.print(table)
        for path in summary.quarantine_files:
            out.print(f"rejected rows and reasons: {plain(path)}")
        if summary.unlisted_by_name:
            names = ", ".join(f"{plain(name)} ({n:,})" for name, n in
                              list(summary.unlisted_by_name.items())[:10])
            more = len(summary.unlisted_by_name) - 10
            out.print(f"event names the vocabulary does not declare: {names}"
                      + (f" and {more} more" if more > 0 else "")
                      + " (declare them in usage_features.yaml, or see "
                        "`usage-features vocabulary`)")
    problem = too_many_rejected(summary, max_rejected_fraction)
    if problem:
        console.print(f"[red]error:[/red] {problem}")
        raise typer.Exit(code=EXIT_TOO_MANY_REJECTED)


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
    # deferred: the ingestion layer loads DuckDB and pyarrow (~0.3 s); --help must not wait
    from usage_features.ingestion.ingest import event_repository
    from usage_features.serving.freshness import day_start

    as_of = utc(as_of) if as_of else datetime.now(UTC)
    day = day_start(as_of)
    repository = event_repository(RepoPaths(repo))
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
        score = event.feature_adoption_score
        table.add_row(str(event.timestamp), event.event_type,
                      "" if score is None else f"{score.value:.3f}")
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
    path: Annotated[Path, typer.Argument(
        help="customer_id, signup_at (required); churned_at, plan (optional)")],
    repo: RepoOption,
    column_map: MapOption = None,
) -> None:
    """Validate the customers table and make it the repo's (replaces the previous one).

    A file with any invalid row is refused (exit status 2), each row named with its reasons;
    the previous table is kept.
    """
    # deferred: the ingestion layer loads DuckDB and pyarrow (~0.3 s); --help must not wait
    from usage_features.ingestion.customers import COLUMNS
    from usage_features.ingestion.readers import InputError
    from usage_features.service_layer.load_customers import load_customers

    mapping = _mapping(repo, column_map, "customer_columns", COLUMNS)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = load_customers(path, RepoPaths(repo), columns=mapping)
    except InputError as exc:
        raise fail(str(exc)) from None
    for warning in caught:
        console.print(f"[yellow]note:[/yellow] {plain(warning.message)}")
    out.print(f"loaded {rows:,} customers into {RepoPaths(repo).customers}")


@app.command()
def build(
    repo: RepoOption,
    engine: EngineOption = Engine.duckdb,
    spark_master: SparkMasterOption = None,
    config: ConfigOption = "feature_store.yaml",
    as_json: JsonOption = False,
) -> None:
    """Compute the feature tables from the event log (incrementally), then `feast apply`."""
    # deferred: the build loads DuckDB and pyarrow (~0.3 s); --help must not wait
    from usage_features.adapters.sql_engine import EngineUnavailable
    from usage_features.features.build import NoEventsError
    from usage_features.features.store import DamagedFileError, DefinitionsError
    from usage_features.service_layer.build import build as build_and_apply

    if spark_master and engine is not Engine.spark:
        raise fail("--spark-master is for --engine spark (the duckdb engine runs in process)")
    with console.status(f"building features with {engine.value}") as status:
        try:
            summary = build_and_apply(RepoPaths(repo), config, engine.value, spark_master,
                                      progress=status.update)
        except (NoEventsError, EngineUnavailable, DefinitionsError, DamagedFileError) as exc:
            raise fail(str(exc)) from None
    if as_json:
        out.print_json(json.dumps(summary.to_dict()))
        return
    for line in summary.repaired:  # literally: a path is no markup
        print(f"repaired: {line}")
    if summary.vocabulary_changed:
        out.print("the event vocabulary changed (a schema change): rebuilt every feature table "
                  "and re-registered the feature service; retrain the model "
                  "(`usage-features train`): a model of the old vocabulary is refused")
    if not summary.changed:
        out.print("feature tables are up to date (no new events)")
    elif summary.new_event_files or summary.months_rewritten:
        out.print(f"folded in {summary.new_event_files} new event file(s): recomputed "
                  f"{summary.customers_recomputed:,} customer(s) from "
                  f"{summary.first_changed_day}; rewrote {len(summary.months_rewritten)} "
                  "month file(s)")
    share = summary.feature_rows / summary.customer_days if summary.customer_days else 0
    out.print(f"{summary.feature_rows:,} feature rows for {summary.customers:,} customers "
              f"({share:.1%} of {summary.customer_days:,} customer-days); "
              + ("feast apply done" if summary.definitions_applied
                 else "definitions unchanged (no feast apply)"))

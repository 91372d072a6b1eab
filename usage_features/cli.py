"""The ``usage-features`` command line. Thin: each command calls one operation and prints it."""

from __future__ import annotations

import json
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from usage_features.config import RepoPaths, default_repo

app = typer.Typer(
    help="Point-in-time-correct SaaS usage features on Feast, and the churn model on top.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console()

RepoOption = Annotated[
    Path,
    typer.Option("--repo", help="The feature repo; all data lives under DIR/data/.",
                 default_factory=default_repo, show_default="feature_repo"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ConfigOption = Annotated[str, typer.Option(
    "--config", help="The repo's Feast config file, e.g. feature_store.redis.yaml.")]


def _progress(total: int | None, label: str) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )


def _utc(moment: datetime) -> datetime:
    """A time given on the command line: UTC unless it names an offset."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


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
    from usage_features.simulation import SimulationConfig, simulate as run, write_simulation

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
        raise _fail(str(exc)) from None
    total = None if None in hints else sum(hints)
    with warnings.catch_warnings(record=True) as caught, _progress(total, "ingest") as bar:
        warnings.simplefilter("always")
        task = bar.add_task("ingest", total=total)
        try:
            summary = ingest_files(paths, RepoPaths(repo), on_rows=lambda n: bar.advance(task, n))
        except InputError as exc:
            raise _fail(str(exc)) from None
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
    """Show a customer's latest events and 7/30/90-day event counts."""
    from usage_features.adapters.parquet_repository import ParquetUsageRepository

    as_of = _utc(as_of) if as_of else datetime.now(timezone.utc)
    repository = ParquetUsageRepository(RepoPaths(repo))
    found = repository.get_events(customer_id)
    if not found:
        raise _fail(f"no events for customer {customer_id!r} in {RepoPaths(repo).events}")
    table = Table(title=f"{customer_id}: {len(found):,} events, latest {min(limit, len(found))}")
    for column in ("timestamp", "event_type", "adoption"):
        table.add_column(column)
    for event in found[-limit:]:
        table.add_row(str(event.timestamp), event.event_type.value,
                      f"{event.feature_adoption_score.value:.3f}")
    out.print(table)
    counts = {n: repository.count_events_last_n_days(customer_id, n, as_of=as_of)
              for n in (7, 30, 90)}
    out.print(f"as of {as_of.isoformat()}: " +
              ", ".join(f"{n}d: {c}" for n, c in counts.items()))


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
        raise _fail(str(exc)) from None
    out.print(f"loaded {rows:,} customers into {RepoPaths(repo).customers}")


@app.command()
def build(repo: RepoOption, as_json: JsonOption = False) -> None:
    """Compute the feature tables from the event log (incrementally), then `feast apply`."""
    from usage_features.features.build import NoEventsError, build_features
    from usage_features.features.store import apply_definitions

    with console.status("building features") as status:
        try:
            summary = build_features(RepoPaths(repo), on_step=status.update)
        except NoEventsError as exc:
            raise _fail(str(exc)) from None
        status.update("feast apply")
        apply_definitions(repo)
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


@app.command("train")
def train_command(
    repo: RepoOption,
    customers: Annotated[Path | None, typer.Option(
        help="Customers table (customer_id, signup_at, churned_at, plan) for the labels; "
             "default: the repo's, from load-customers.")] = None,
    horizon_days: Annotated[int, typer.Option(help="Label: churned within (t, t + N days].")] = 30,
    train_end: Annotated[datetime | None, typer.Option(
        help="Use no label window that ends after this time (UTC).")] = None,
    model_out: Annotated[Path | None, typer.Option(
        help="Where to save the model; default DIR/data/models/churn_model_v1.skops")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train the churn model on point-in-time features from Feast, with a report."""
    from usage_features.ingestion.readers import InputError
    from usage_features.training.labels import LabelError
    from usage_features.training.train import TrainConfig, train

    config = TrainConfig(repo=repo, customers=customers, horizon_days=horizon_days,
                         train_end=_utc(train_end) if train_end else None, model_out=model_out)
    with console.status("training") as status:
        try:
            result = train(config, progress=status.update)
        except (LabelError, InputError, FileNotFoundError) as exc:
            raise _fail(str(exc)) from None
    meta = result.model.metadata
    if as_json:
        out.print_json(json.dumps({
            "model_version": meta.model_version, "model_path": str(result.model_path),
            "report_dir": str(result.report_dir), "metrics": meta.metrics,
            "ablation": result.ablation.to_dict(orient="records"), "counts": result.counts,
            "leakage_alarm": result.leakage_alarm}))
        return
    table = Table("model", "ROC AUC", "PR AUC", "Brier", "top-decile lift",
                  title=f"validation from {meta.train_window['validation_start'][:10]}")
    for row in result.metrics.itertuples():
        table.add_row(row.model, f"{row.roc_auc:.3f}", f"{row.pr_auc:.3f}", f"{row.brier:.4f}",
                      f"{row.top_decile_lift:.2f}")
    out.print(table)
    ablation = Table("features", "ROC AUC", "change", title="ablation")
    for row in result.ablation.itertuples():
        ablation.add_row(row.features, f"{row.roc_auc:.3f}", f"{row.auc_change:+.3f}")
    out.print(ablation)
    if result.leakage_alarm:
        console.print("[red]warning:[/red] validation AUC above 0.95: suspect label leakage")
    out.print(f"model {meta.model_version}: {result.model_path}")
    out.print(f"report: {result.report_dir / 'summary.md'} (with plots)")


@app.command("predict")
def predict_command(
    entities: Annotated[Path, typer.Option(help="Rows to score: customer_id, event_timestamp.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")],
    repo: RepoOption,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
) -> None:
    """Batch scoring through historical features: adds churn_probability to each row."""
    import pandas as pd

    from usage_features.training.model import ModelMismatchError
    from usage_features.training.train import predict

    reader = pd.read_csv if entities.suffix == ".csv" else pd.read_parquet
    try:
        rows = reader(entities)
        scored = predict(repo, rows, model)
    except (ModelMismatchError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    writer = scored.to_csv if out_path.suffix == ".csv" else scored.to_parquet
    writer(out_path, index=False)
    out.print(f"scored {len(scored):,} rows -> {out_path}")


@app.command("materialize")
def materialize_command(
    repo: RepoOption,
    end: Annotated[datetime | None, typer.Option(help="Materialize up to this time (UTC); "
                                                 "default now.")] = None,
    config: ConfigOption = "feature_store.yaml",
) -> None:
    """Load the latest feature rows into the online store (SQLite by default), incrementally."""
    from usage_features.serving.materialize import materialize

    summary = materialize(repo, _utc(end) if end else None, config)
    out.print(f"materialized {', '.join(summary.views)} from {summary.start:%Y-%m-%d %H:%M} "
              f"to {summary.end:%Y-%m-%d %H:%M} UTC")


@app.command("score")
def score_command(
    customer_ids: Annotated[list[str], typer.Argument(help="Customers to score.")],
    repo: RepoOption,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
    as_of: Annotated[datetime | None, typer.Option(
        help="Score as of this time (UTC); default now.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = "feature_store.yaml",
) -> None:
    """Churn probability, risk band and reasons for customers, from the online store."""
    from usage_features.serving.scorer import ChurnScorer
    from usage_features.training.model import ModelMismatchError

    try:
        scorer = ChurnScorer.from_repo(repo, model, config)
    except (ModelMismatchError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    scores = scorer.score(customer_ids, _utc(as_of) if as_of else None)
    if as_json:
        for score in scores:
            print(json.dumps(score.to_dict()))
        return
    table = Table("customer", "churn probability", "risk", "reasons",
                  title=f"model {scorer.model.metadata.model_version}")
    for score in scores:
        if score.error:
            table.add_row(score.customer_id, "-", "-", f"[red]{score.error}")
        else:
            table.add_row(score.customer_id, f"{score.churn_probability:.3f}", score.risk_band,
                          "; ".join(score.reasons) or "no risk signal")
    out.print(table)


@app.command("serve")
def serve_command(
    repo: RepoOption,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
    config: ConfigOption = "feature_store.yaml",
) -> None:
    """Serve POST /score, GET /health and GET /model over HTTP (docs at /docs)."""
    from usage_features.serving.http import serve

    out.print(f"serving on http://{host}:{port} (OpenAPI docs at /docs)")
    serve(repo, host, port, model, config)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Fresh directory for everything the demo writes "
                                          "(replaced if it exists).")] = Path("demo"),
    customers: Annotated[int, typer.Option(help="Simulated customers.")] = 1500,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 365,
) -> None:
    """The main job end to end on the embedded defaults, in a fresh directory."""
    from usage_features.demo import DemoConfig, run_demo

    template = Path(__file__).resolve().parents[1] / "feature_repo"
    if not (template / "feature_store.yaml").exists():
        template = default_repo()

    def report(step: str, result) -> None:
        out.rule(f"[bold]{step}")
        _print_step(step, result)

    config = DemoConfig(workdir=workdir, customers=customers, days=days)
    with console.status("running the demo"):
        run_demo(config, template, report)
    out.rule()
    out.print(f"feature repo: {workdir / 'feature_repo'} (try `feast -c {workdir}/feature_repo "
              "feature-views list`)")


def _print_step(step: str, result) -> None:
    from usage_features.ingestion import REASONS

    if step == "simulate":
        out.print(f"{result['events']:,} raw events (some deliberately broken) for "
                  f"{result['customers']:,} customers -> {', '.join(result['files'])}")
    elif step == "ingest":
        out.print(f"read {result.read:,}: accepted {result.accepted:,}, rejected "
                  f"{result.rejected:,}, duplicates {result.duplicates:,}")
        for code, n in result.rejected_by_reason.items():
            out.print(f"  {n:>6,} {code}: {REASONS[code]}")
        for path in result.quarantine_files:
            out.print(f"  rejected rows with their reasons: {path}")
    elif step == "load-customers":
        out.print(f"{result:,} customers loaded")
    elif step == "build":
        out.print(f"{result.feature_rows:,} compact feature rows for {result.customers:,} "
                  f"customers ({result.feature_rows / max(result.customer_days, 1):.1%} of "
                  f"{result.customer_days:,} customer-days); feast apply done")
    elif step == "show":
        out.print(f"customer {result['customer_id']} as of {result['as_of']:%Y-%m-%d %H:%M} UTC")
        for event in result["latest_events"]:
            out.print(f"  {event.timestamp:%Y-%m-%d %H:%M}  {event.event_type.value:<20} "
                      f"adoption {event.feature_adoption_score.value:.2f}")
        out.print("  events in the last " + ", ".join(
            f"{n} days: {c}" for n, c in result["counts"].items()))
        table = Table("feature (churn_model_v1)", "value", box=None)
        for name, value in result["features"].items():
            table.add_row(name, f"{value:.3f}" if isinstance(value, float) else str(value))
        out.print(table)
    elif step == "train":
        for row in result.metrics.itertuples():
            out.print(f"  {row.model:<32} ROC AUC {row.roc_auc:.3f}  PR AUC {row.pr_auc:.3f}  "
                      f"Brier {row.brier:.4f}  top-decile lift {row.top_decile_lift:.2f}")
        out.print(f"model: {result.model_path}")
        out.print(f"report with plots: {result.report_dir / 'summary.md'}")
    elif step == "materialize":
        out.print(f"online store (SQLite) loaded up to {result.end:%Y-%m-%d %H:%M} UTC")
    elif step == "score":
        for score in result:
            if score.error:
                out.print(f"  {score.customer_id}: {score.error}")
            else:
                out.print(f"  {score.customer_id}: {score.churn_probability:.2f} "
                          f"({score.risk_band}) - {'; '.join(score.reasons) or 'no risk signal'}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())

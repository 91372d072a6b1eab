"""The main job: ``usage-features demo``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from usage_features.cli import (
    app,
    console,
    out,
    plain,
    require_extra,
)
from usage_features.config import default_repo
from usage_features.http.limits import TOKEN_VARIABLE

#: Where `usage-features serve` listens by default (its --host and --port).
SERVE_ADDRESS = "http://127.0.0.1:8000/"


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Fresh directory for everything the demo writes "
                                          "(replaced if it exists).")] = Path("demo"),
    customers: Annotated[int, typer.Option(help="Simulated customers.")] = 1500,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 365,
) -> None:
    """The main job end to end on the embedded defaults, in a fresh directory."""
    require_extra("report", "usage-features demo")  # its monitor step draws plots
    # deferred: the service layer loads scikit-learn, pandas, DuckDB (~1 s); --help must not wait
    from usage_features.service_layer.demo import DemoConfig, run_demo

    template = Path(__file__).resolve().parents[2] / "feature_repo"
    if not (template / "feature_store.yaml").exists():
        template = default_repo()

    def report(step: str, result) -> None:
        out.rule(f"[bold]{step}")
        _print_step(step, result)

    config = DemoConfig(workdir=workdir, customers=customers, days=days,
                        api_token=os.environ.get(TOKEN_VARIABLE) or None)
    with console.status("running the demo"):
        results = run_demo(config, template, report)
    out.rule()
    out.print(f"feature repo: {workdir / 'feature_repo'} (try `feast -c {workdir}/feature_repo "
              "feature-views list`)")
    token = results["web"]
    out.print(f"web pages: run `usage-features serve --repo {workdir / 'feature_repo'}`, open "
              f"{SERVE_ADDRESS} and sign in with the token")
    if token.source == "configured":
        out.print(f"  (${TOKEN_VARIABLE}, the API token)")
    else:
        print(f"  {token.token}", flush=True)


def _print_step(step: str, result) -> None:
    # deferred: the ingestion layer loads DuckDB and pyarrow (~0.3 s); --help must not wait
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
                  f"{result.customer_days:,} customer-days); feast apply "
                  + ("done" if result.definitions_applied else "not needed"))
    elif step == "show":
        out.print(f"customer {result['customer_id']} as of {result['as_of']:%Y-%m-%d %H:%M} UTC")
        for event in result["latest_events"]:
            score = event.feature_adoption_score
            out.print(f"  {event.timestamp:%Y-%m-%d %H:%M}  {event.event_type:<20} "
                      + ("" if score is None else f"adoption {score.value:.2f}"))
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
        out.print(f"shipped: {result.selection.sentence()}")
        out.print(f"model: {result.model_path}")
        out.print(f"report with plots: {result.report_dir / 'summary.md'}")
    elif step == "materialize":
        out.print(f"online store (SQLite) loaded up to {result.end:%Y-%m-%d %H:%M} UTC")
    elif step == "refresh":
        out.print(f"{result.now:%Y-%m-%d}: {len(result.files_ingested)} new inbox file(s), "
                  f"{result.events_accepted:,} events accepted ({result.events_rejected:,} "
                  f"rejected); scored {result.scored:,} of {result.active_customers:,} active "
                  f"customers -> {', '.join(result.delivered)}; "
                  f"alarms: {plain('; '.join(result.alarms)) or 'none'}")
    elif step == "monitor":
        worst = sorted(result.feature_drift, key=lambda d: -d["psi"])[:3]
        out.print(f"scores of {result.snapshot_day}: score PSI {result.score_psi:.3f}; largest "
                  "feature PSI " + ", ".join(f"{d['feature']} {d['psi']:.3f}" for d in worst))
        out.print(f"alarms: {plain('; '.join(result.alarms)) or 'none'}")
        out.print(f"report with plots: {result.report_dir}/monitor.md")
    elif step == "web":
        pass  # printed at the end: the address and the token
    elif step == "score":
        for score in result:
            if score.error or score.churn_probability is None:
                out.print(f"  {score.customer_id}: {score.error or score.status}")
            else:
                out.print(f"  {score.customer_id}: {score.churn_probability:.2f} "
                          f"({score.risk_band}) - {'; '.join(score.reasons) or 'no risk signal'}")

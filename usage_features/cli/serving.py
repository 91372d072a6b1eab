"""Online commands: materialize, score, serve."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from usage_features.cli import (
    ConfigOption,
    MaxLagOption,
    RepoOption,
    app,
    bootstrap_or_fail,
    console,
    fail,
    out,
    plain,
    require_extra,
    utc,
)


def print_freshness(record) -> None:
    """The data behind an answer, and what may make it stale (on stderr)."""
    def when(moment):
        return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"

    line = (f"data: latest event {when(record.latest_event_at)}, "
            f"last build {when(record.last_build_at)}")
    if record.online:
        line += f", online store materialized through {when(record.materialized_through)}"
    console.print(line)
    for warning in record.warnings():
        console.print(f"[yellow]warning:[/yellow] {plain(warning)}")


def model_errors() -> tuple[type[Exception], ...]:
    """What loading a model raises for one that cannot be used, each with a clear message."""
    # deferred: training loads scikit-learn and pandas (~1 s); --help must not wait
    from usage_features.training.model import ModelMismatchError
    from usage_features.training.persistence import ModelFileError

    return ModelMismatchError, ModelFileError, FileNotFoundError


@app.command("materialize")
def materialize_command(
    repo: RepoOption,
    end: Annotated[datetime | None, typer.Option(help="Materialize up to this time (UTC); "
                                                 "default now. A later time is clamped to "
                                                 "now; one before the online store's current "
                                                 "end is refused.")] = None,
    config: ConfigOption = "feature_store.yaml",
) -> None:
    """Load the latest feature rows into the online store (SQLite by default), incrementally."""
    # deferred: the service layer loads DuckDB (~0.2 s); --help must not wait
    from usage_features.features.store import DamagedFileError
    from usage_features.service_layer.materialize import MaterializeError, materialize

    try:
        summary = materialize(repo, utc(end) if end else None, config)
    except (MaterializeError, DamagedFileError) as exc:
        raise fail(str(exc)) from None
    if summary.warning:
        console.print(f"[yellow]warning:[/yellow] {plain(summary.warning)}")
    out.print(f"materialized {', '.join(summary.views)} from {summary.start:%Y-%m-%d %H:%M} "
              f"to {summary.end:%Y-%m-%d %H:%M} UTC")


@app.command("score")
def score_command(
    repo: RepoOption,
    customer_ids: Annotated[list[str] | None, typer.Argument(help="Customers to score.")] = None,
    every_active: Annotated[bool, typer.Option(
        "--all", help="Score every active customer of the customers table (signed up, not "
                      "churned at the scoring time).")] = False,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
    as_of: Annotated[datetime | None, typer.Option(
        help="Score as of this time (UTC); default now, or the online store's own time "
             "when it does not hold now's features (a note says so). A time off the online "
             "store's day is scored from historical features (as predict).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = "feature_store.yaml",
    max_lag_hours: MaxLagOption = None,
) -> None:
    """Churn probability, risk band and reasons for customers, from the online store."""
    # deferred: the service layer loads DuckDB (~0.2 s); --help must not wait
    from usage_features.features.store import DamagedFileError, OnlineStoreNotMaterialized
    from usage_features.service_layer.score import score, score_active

    if bool(customer_ids) == every_active:
        raise fail("name the customers to score, or pass --all (not both)")
    context = bootstrap_or_fail(repo, config, model, max_lag_hours)
    moment = utc(as_of) if as_of else None
    try:
        answer = (score_active(context.scorer, context.paths.customers, moment) if every_active
                  else score(context.scorer, customer_ids, moment))
    except (*model_errors(), OnlineStoreNotMaterialized, DamagedFileError) as exc:
        raise fail(str(exc)) from None
    if answer.note:
        console.print(f"note: {plain(answer.note)}")
    print_freshness(answer.freshness)
    scores, scorer = answer.scores, context.scorer
    if as_json:
        for one in scores:
            print(json.dumps(one.to_dict()))
        return
    table = Table("customer", "status", "churn probability", "risk", "reasons",
                  title=f"model {scorer.model.metadata.model_version}")
    no_reasons = ("no risk signal" if scorer.reasons.available
                  else "no reasons: the model has no reference values (retrain it)")
    for one in scores:
        if one.error:
            table.add_row(one.customer_id, one.status, "-", "-", f"[red]{one.error}")
        elif one.churn_probability is None:
            table.add_row(one.customer_id, one.status, "-", "-",
                          f"churned at {one.churned_at:%Y-%m-%d %H:%M} UTC"
                          if one.churned_at else "")
        else:
            table.add_row(one.customer_id, one.status, f"{one.churn_probability:.3f}",
                          one.risk_band, "; ".join(one.reasons) or no_reasons)
    out.print(table)


@app.command("serve")
def serve_command(
    repo: RepoOption,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
    config: ConfigOption = "feature_store.yaml",
    max_lag_hours: MaxLagOption = None,
) -> None:
    """Serve the web pages, POST /score, GET /health (with the data's freshness) and GET /model.

    The pages ask for a token at sign-in: USAGE_FEATURES_API_TOKEN, or without it the repo's
    own (generated on the first start, printed at every start). API bearer-token auth with
    USAGE_FEATURES_API_TOKEN; limits with USAGE_FEATURES_MAX_BODY_BYTES,
    USAGE_FEATURES_BODY_TIMEOUT, USAGE_FEATURES_HEADER_TIMEOUT, USAGE_FEATURES_KEEP_ALIVE_TIMEOUT.
    """
    require_extra("serve", "usage-features serve")
    # deferred: the serve extra; the HTTP app loads scikit-learn, pandas, DuckDB (~1.5 s)
    from usage_features.features.store import DamagedFileError, OnlineStoreNotMaterialized
    from usage_features.http.app import prepare, run
    from usage_features.http.limits import TOKEN_VARIABLE, ServiceConfigError, api_token
    from usage_features.service_layer.pages.token import CONFIGURED, page_token

    context = bootstrap_or_fail(repo, config, model, max_lag_hours)
    try:
        configured = api_token()  # checked before a token is made for the pages
        token = page_token(context.paths, configured and configured.decode("utf-8"))
        service, limits = prepare(context, token.token)
    except (*model_errors(), ServiceConfigError, OnlineStoreNotMaterialized,
            DamagedFileError) as exc:
        raise fail(str(exc)) from None
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    out.print(f"serving on http://{shown}:{port}/ (the web pages; the API: POST /score, "
              "GET /health, GET /model; schema at /openapi.json)")
    if token.source == CONFIGURED:
        out.print(f"sign in with the API token (${TOKEN_VARIABLE})")
    else:
        print(f"sign in with the token: {token.token}", flush=True)
        out.print(f"(kept in {token.path}; the API itself stays open without ${TOKEN_VARIABLE})")
    run(service, limits, host, port)

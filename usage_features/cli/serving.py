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
    RepoOption,
    app,
    fail,
    out,
    utc,
)


def model_errors() -> tuple[type[Exception], ...]:
    """What loading a model raises for one that cannot be used, each with a clear message."""
    from usage_features.training.model import ModelMismatchError
    from usage_features.training.persistence import ModelFileError

    return ModelMismatchError, ModelFileError, FileNotFoundError


@app.command("materialize")
def materialize_command(
    repo: RepoOption,
    end: Annotated[datetime | None, typer.Option(help="Materialize up to this time (UTC); "
                                                 "default now.")] = None,
    config: ConfigOption = "feature_store.yaml",
) -> None:
    """Load the latest feature rows into the online store (SQLite by default), incrementally."""
    from usage_features.serving.materialize import materialize

    summary = materialize(repo, utc(end) if end else None, config)
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

    try:
        scorer = ChurnScorer.from_repo(repo, model, config)
    except model_errors() as exc:
        raise fail(str(exc)) from None
    scores = scorer.score(customer_ids, utc(as_of) if as_of else None)
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
    """Serve POST /score, GET /health and GET /model over HTTP (docs at /docs).

    Bearer-token auth with USAGE_FEATURES_API_TOKEN; limits with USAGE_FEATURES_MAX_BODY_BYTES,
    USAGE_FEATURES_BODY_TIMEOUT, USAGE_FEATURES_HEADER_TIMEOUT, USAGE_FEATURES_KEEP_ALIVE_TIMEOUT.
    """
    from usage_features.serving.http import prepare, run
    from usage_features.serving.limits import ServiceConfigError

    try:
        service, limits = prepare(repo, model, config)
    except (*model_errors(), ServiceConfigError) as exc:
        raise fail(str(exc)) from None
    out.print(f"serving on http://{host}:{port} (OpenAPI docs at /docs)")
    run(service, limits, host, port)

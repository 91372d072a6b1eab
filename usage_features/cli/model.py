"""Commands of the churn model: train, predict."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from usage_features.cli import (
    JsonOption,
    RepoOption,
    app,
    console,
    fail,
    out,
    utc,
)


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
                         train_end=utc(train_end) if train_end else None, model_out=model_out)
    with console.status("training") as status:
        try:
            result = train(config, progress=status.update)
        except (LabelError, InputError, FileNotFoundError) as exc:
            raise fail(str(exc)) from None
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
        raise fail(str(exc)) from None
    writer = scored.to_csv if out_path.suffix == ".csv" else scored.to_parquet
    writer(out_path, index=False)
    out.print(f"scored {len(scored):,} rows -> {out_path}")

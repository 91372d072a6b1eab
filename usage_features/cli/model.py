"""Commands of the churn model: train, predict."""

from __future__ import annotations

import json
import warnings
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from usage_features.cli import (
    JsonOption,
    RepoOption,
    app,
    bootstrap_or_fail,
    console,
    fail,
    out,
    plain,
    utc,
)
from usage_features.cli.serving import model_errors, print_freshness
from usage_features.training import DEFAULT_MAX_ROWS


class SelectBy(str, Enum):
    """What ``train`` ships the best candidate by (training.selection.SELECT_BY)."""

    pr_auc = "pr_auc"
    precision_at_capacity = "precision_at_capacity"


@app.command("train")
def train_command(
    repo: RepoOption,
    customers: Annotated[Path | None, typer.Option(
        help="Customers table (customer_id, signup_at, churned_at, ...): the labels and the "
             "customer profile (tenure). It becomes the repo's customers table (as "
             "load-customers) and the profile is rebuilt; default: the repo's.")] = None,
    horizon_days: Annotated[int, typer.Option(help="Label: churned within (t, t + N days].")] = 30,
    train_end: Annotated[datetime | None, typer.Option(
        help="Use no label window that ends after this time (UTC).")] = None,
    model_out: Annotated[Path | None, typer.Option(
        help="Where to save the model; default DIR/data/models/churn_model_v1.skops")] = None,
    select_by: Annotated[SelectBy, typer.Option(
        help="What the shipped model is chosen by on the validation period: pr_auc, or "
             "precision_at_capacity (the share of churners among the `capacity:` riskiest "
             "active customers of each date, usage_features.yaml; default 5%).")
    ] = SelectBy.pr_auc,
    backtest: Annotated[int, typer.Option(
        min=0, help="Also run K rolling-origin backtest folds (each trained only on rows whose "
                    "label window ends before its test period) and report each metric's mean "
                    "and spread per candidate.")] = 0,
    max_rows: Annotated[int, typer.Option(
        min=0, help="Beyond this many weekly observation rows, train on the rows of a sample "
                    "of whole customers (chosen by a fixed hash of their ids; at least this "
                    "many rows, recorded in the model); 0: every row.")] = DEFAULT_MAX_ROWS,
    as_json: JsonOption = False,
) -> None:
    """Train the churn model on point-in-time features from Feast, with a report.

    Fits the candidates (boosted trees, logistic regression, event_count_30d alone), ships the
    one with the best validation PR AUC (ties: ROC AUC), refitted on every labelled row."""
    # deferred: training loads scikit-learn and pandas (~1 s); --help must not wait
    from usage_features.features.build import NoEventsError
    from usage_features.features.store import DamagedFileError
    from usage_features.ingestion.readers import InputError
    from usage_features.ingestion.settings import SettingsError
    from usage_features.service_layer.train import TrainConfig, train
    from usage_features.training.labels import LabelError
    from usage_features.training.train import FeatureDataWarning, HorizonWarning

    config = TrainConfig(repo=repo, customers=customers, horizon_days=horizon_days,
                         train_end=utc(train_end) if train_end else None, model_out=model_out,
                         backtest=backtest, select_by=select_by.value, max_rows=max_rows)
    with console.status("training") as status, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FeatureDataWarning)
        warnings.simplefilter("always", HorizonWarning)
        try:
            result, error = train(config, progress=status.update), None
        except (LabelError, InputError, FileNotFoundError, NoEventsError,
                DamagedFileError, SettingsError) as exc:
            result, error = None, exc
    _show(caught, FeatureDataWarning)  # out here: inside, showing would record them again
    _show(caught, HorizonWarning)
    if error is not None:
        raise fail(str(error)) from None
    meta = result.model.metadata
    if customers is not None:
        console.print(f"{customers} is now the repo's customers table (profile rebuilt)")
    if as_json:
        out.print_json(json.dumps({
            "model_version": meta.model_version, "model_path": str(result.model_path),
            "report_dir": str(result.report_dir), "metrics": meta.metrics,
            "ablation": result.ablation.to_dict(orient="records"), "counts": result.counts,
            "leakage_alarm": result.leakage_alarm, "selection": meta.selection,
            "backtest": meta.backtest, "horizons": meta.horizons, "sample": meta.sample,
            "incomplete_history": meta.incomplete_history}))
        return
    if meta.incomplete_history:
        left = meta.incomplete_history
        out.print(f"left out {left['rows']:,} of {left['of_rows']:,} observation rows: customers "
                  f"who signed up before the event history starts ({left['history_from']}) are "
                  f"observed from {left['observed_from']} on")
    capacity = meta.selection.get("capacity")
    table = Table("candidate", "ROC AUC", "PR AUC", f"precision at {capacity}",
                  f"recall at {capacity}", "Brier", "top-decile lift", "ECE",
                  title=f"validation from {meta.train_window['validation_start'][:10]} "
                        f"(capacity: {capacity} per scoring date)")
    for row in result.metrics.itertuples():
        table.add_row(f"{row.model}{' (shipped)' if row.selected else ''}", f"{row.roc_auc:.3f}",
                      f"{row.pr_auc:.3f}", f"{row.precision_at_capacity:.3f}",
                      f"{row.recall_at_capacity:.3f}", f"{row.brier:.4f}",
                      f"{row.top_decile_lift:.2f}", f"{row.ece:.4f}")
    out.print(table)
    out.print(f"selected {result.selection.sentence()}; refitted on "
              f"{meta.selection['refit_rows']:,} labelled rows")
    if result.backtest is not None:
        _print_backtest(result.backtest, backtest)
        for model, metrics in meta.backtest["versus_winner"].items():
            d = metrics["pr_auc"]
            out.print(f"  {model}: PR AUC {d['mean']:+.3f} ± {d['std']:.3f} against "
                      f"{result.selection.winner} fold by fold (higher in "
                      f"{d['folds_higher']} of {backtest} folds)")
    if result.horizons is not None and not result.horizons.empty:
        _print_horizons(result.horizons)
    ablation = Table("features", "ROC AUC", "change", title="ablation")
    for row in result.ablation.itertuples():
        ablation.add_row(row.features, f"{row.roc_auc:.3f}", f"{row.auc_change:+.3f}")
    out.print(ablation)
    if result.leakage_alarm:
        console.print("[red]warning:[/red] validation AUC above 0.95: suspect label leakage")
    out.print(f"model {meta.model_version}: {result.model_path}")
    out.print(f"report: {result.report_dir / 'summary.md'} (with plots)")


def _print_horizons(by_horizon) -> None:
    table = Table("horizon", "model", "ROC AUC", "PR AUC", "ECE", "c-index",
                  title="longer horizons, each on its own later test period")
    for row in by_horizon.itertuples():
        table.add_row(f"{row.horizon_days} d", f"{row.model}{' (shipped)' if row.shipped else ''}",
                      f"{row.roc_auc:.3f}", f"{row.pr_auc:.3f}", f"{row.ece:.4f}",
                      f"{row.c_index:.3f}")
    out.print(table)


def _print_backtest(per_fold, folds: int) -> None:
    # deferred: training loads scikit-learn and pandas (~1 s); --help must not wait
    from usage_features.training.backtest import spread

    summary = spread(per_fold).set_index(["model", "metric"])
    table = Table("candidate", "ROC AUC", "PR AUC", "precision at capacity", "ECE",
                  title=f"backtest: mean ± std (min-max) over {folds} folds")
    for model in dict.fromkeys(per_fold.model):
        cells = []
        for metric in ("roc_auc", "pr_auc", "precision_at_capacity", "ece"):
            s = summary.loc[(model, metric)]
            cells.append(f"{s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.3f}-{s['max']:.3f})")
        table.add_row(model, *cells)
    out.print(table)


@app.command("predict")
def predict_command(
    entities: Annotated[Path, typer.Option(help="Rows to score: customer_id, event_timestamp "
                                                "(with a UTC offset, as ingest accepts).")],
    out_path: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")],
    repo: RepoOption,
    model: Annotated[Path | None, typer.Option(help="Model file; default the repo's.")] = None,
    max_lag_hours: Annotated[float | None, typer.Option(
        "--max-lag-hours", help="Warn when rows are this long after the latest ingested event "
                                "(default $USAGE_FEATURES_MAX_LAG_HOURS or 36).")] = None,
) -> None:
    """Batch scoring through historical features: status, churn_probability, beyond_data."""
    # deferred: the service layer loads scikit-learn, pandas, DuckDB (~1 s); --help must not wait
    from usage_features.ingestion.readers import InputError
    from usage_features.service_layer.predict import NoValidRows, predict_file

    context = bootstrap_or_fail(repo, model_path=model, max_lag_hours=max_lag_hours)
    try:
        result = predict_file(context, entities, out_path)
    except (InputError, NoValidRows, *model_errors(), ValueError) as exc:
        raise fail(str(exc)) from None
    for message in list(result.errors.values())[:10]:
        console.print(f"[yellow]rejected:[/yellow] {plain(message)}")
    if len(result.errors) > 10:
        console.print(f"[yellow]rejected:[/yellow] ... {len(result.errors) - 10:,} more "
                      "(see the error column)")
    print_freshness(result.freshness)
    if result.beyond_data:
        console.print(f"[yellow]warning:[/yellow] {result.beyond_data:,} row(s) are after the "
                      "latest ingested event (beyond_data): their features assume no activity "
                      "since")
    out.print(f"scored {len(result.rows):,} rows -> {out_path} ("
              + ", ".join(f"{n:,} {s}" for s, n in result.counts().items()) + ")")


def _show(caught: list, ours: type) -> None:
    """Warnings recorded while a command ran: ours as one plain line each, others as usual."""
    for caught_warning in caught:
        if issubclass(caught_warning.category, ours):
            console.print(f"[yellow]warning:[/yellow] {plain(caught_warning.message)}")
        else:
            warnings.showwarning(caught_warning.message, caught_warning.category,
                                 caught_warning.filename, caught_warning.lineno)

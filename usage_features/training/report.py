"""The training report folder: plots, tables as CSV, ``summary.md`` and the monitoring reference."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from usage_features.extras import MissingExtraError
from usage_features.training import evaluate
from usage_features.training.backtest import paired_differences, spread

#: The validation period's rows, features and model scores, in the model's report folder.
REFERENCE_FILE = "validation_reference.parquet"


@dataclass
class Report:
    """What ``train`` measured, ready to write."""

    metadata: object  # ModelMetadata
    y_validation: np.ndarray
    scores: dict[str, np.ndarray]
    table: pd.DataFrame
    ablation: pd.DataFrame
    importance: pd.DataFrame
    counts: dict[str, int]
    selection: object  # Selection
    backtest: pd.DataFrame | None = None
    #: the horizons' table (:func:`~usage_features.training.horizons.fit_horizons`)
    horizons: pd.DataFrame | None = None


def write_report(report: Report, validate: pd.DataFrame, report_dir: Path) -> Path:
    """Write the report folder; returns it."""
    features = report.metadata.features
    winner = report.selection.winner
    report_dir.mkdir(parents=True, exist_ok=True)
    try:  # training is core; its plots need the report extra (matplotlib)
        evaluate.plot_curves(report.y_validation, report.scores, report_dir)
        evaluate.plot_importance(report.importance, report_dir)
    except MissingExtraError as exc:
        warnings.warn(f"report plots not drawn: {exc}", stacklevel=2)
    # what `usage-features monitor` compares today's features and scores with
    validate[["customer_id", "event_timestamp", *features]].assign(
        churn_probability=report.scores[winner]).to_parquet(report_dir / REFERENCE_FILE,
                                                              index=False)
    report.importance.to_csv(report_dir / "permutation_importance.csv", index=False)
    report.table.to_csv(report_dir / "metrics.csv", index=False)
    backtest_spread = versus = None
    if report.backtest is not None:
        report.backtest.to_csv(report_dir / "backtest.csv", index=False)
        backtest_spread = spread(report.backtest)
        backtest_spread.to_csv(report_dir / "backtest_spread.csv", index=False)
        versus = paired_differences(report.backtest, winner)
        versus.to_csv(report_dir / "backtest_versus_winner.csv", index=False)
    if report.horizons is not None and not report.horizons.empty:
        report.horizons.to_csv(report_dir / "horizons.csv", index=False)
    (report_dir / "summary.md").write_text(evaluate.summary_markdown(
        report.metadata, report.table, report.ablation, report.importance, report.counts,
        selection=report.selection, backtest=backtest_spread, versus=versus)
        + evaluate.horizons_markdown(report.metadata.horizons, report.horizons))
    return report_dir

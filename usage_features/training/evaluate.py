"""Validation metrics, the plots a churn analyst reads, and the Markdown summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

#: Above this validation AUC the features are presumed to leak the label.
LEAKAGE_ALARM_AUC = 0.95


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Churn rate among the 10 % highest scores, over the overall churn rate."""
    y, p = np.asarray(y), np.asarray(p)
    k = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean() / y.mean()) if y.mean() > 0 else float("nan")


def metrics(y, p) -> dict[str, float]:
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "top_decile_lift": top_decile_lift(y, p),
    }


def plot_curves(y, scores: dict[str, np.ndarray], out: Path) -> list[Path]:
    """ROC, precision-recall, calibration and lift-by-decile plots, one PNG each."""
    from matplotlib.figure import Figure  # not pyplot: leave the process's backend alone

    out.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y)
    drawn = []

    def figure(name: str, title: str, xlabel: str, ylabel: str, draw) -> None:
        fig = Figure(figsize=(5.5, 4.5))
        ax = fig.subplots()
        for label, p in scores.items():
            draw(ax, label, np.asarray(p))
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=110)
        drawn.append(out / f"{name}.png")

    def roc(ax, label, p):
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, p):.3f})")
        ax.plot([0, 1], [0, 1], ":", color="grey")

    def pr(ax, label, p):
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=f"{label} (AP {average_precision_score(y, p):.3f})")
        ax.axhline(y.mean(), ls=":", color="grey")

    def calibration(ax, label, p):
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(predicted, observed, marker="o", label=label)
        ax.plot([0, 1], [0, 1], ":", color="grey")

    def lift(ax, label, p):
        order = np.argsort(-p, kind="stable")
        deciles = np.array_split(y[order], 10)
        ax.plot(range(1, 11), [d.mean() / y.mean() for d in deciles], marker="o", label=label)
        ax.axhline(1, ls=":", color="grey")

    figure("roc", "ROC (validation period)", "false positive rate", "true positive rate", roc)
    figure("precision_recall", "Precision-recall", "recall", "precision", pr)
    figure("calibration", "Calibration", "predicted churn probability", "observed churn rate",
           calibration)
    figure("lift", "Lift by score decile", "decile (1 = highest scores)", "lift", lift)
    return drawn


def plot_importance(importance: pd.DataFrame, out: Path) -> Path:
    from matplotlib.figure import Figure

    top = importance.head(15).iloc[::-1]
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    ax.barh(top.feature, top.mean_auc_drop, xerr=top.std_auc_drop, color="tab:blue")
    ax.set(title="Permutation importance (validation)", xlabel="ROC AUC drop when shuffled")
    fig.tight_layout()
    fig.savefig(out / "permutation_importance.png", dpi=110)
    return out / "permutation_importance.png"


def summary_markdown(meta, table: pd.DataFrame, ablation: pd.DataFrame,
                     importance: pd.DataFrame, counts: dict[str, int]) -> str:
    def md(frame: pd.DataFrame) -> str:
        header = "| " + " | ".join(frame.columns) + " |"
        rule = "|" + "---|" * len(frame.columns)
        rows = ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)
                + " |" for row in frame.itertuples(index=False)]
        return "\n".join([header, rule, *rows])

    window = meta.train_window
    return f"""# Churn model report: {meta.model_version}

Feature service `{meta.feature_service}` ({len(meta.features)} features), horizon
{meta.horizon_days} days, observations every {meta.interval_days} days.
Training rows {window['train_start']} .. {window['train_end']} ({counts['train']:,} rows,
{counts['train_positives']:,} churners); validation from {window['validation_start']} to
{window['validation_end']} ({counts['validation']:,} rows, {counts['validation_positives']:,}
churners). Split by time; training labels end before the validation period starts.

## Validation metrics

{md(table)}

## Ablation (same model, feature groups removed)

{md(ablation)}

## Permutation importance (top 10)

{md(importance.head(10))}

Plots: `roc.png`, `precision_recall.png`, `calibration.png`, `lift.png`,
`permutation_importance.png`.
"""

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

from usage_features.domain.capacity import DEFAULT_CAPACITY, Capacity
from usage_features.extras import extra_imports

#: Above this validation AUC the features are presumed to leak the label.
LEAKAGE_ALARM_AUC = 0.95


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Churn rate among the 10 % highest scores, over the overall churn rate."""
    y, p = np.asarray(y), np.asarray(p)
    k = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean() / y.mean()) if y.mean() > 0 else float("nan")


#: The ranking metrics, in words.
METRIC_NAMES = {"pr_auc": "PR AUC", "roc_auc": "ROC AUC",
                "precision_at_capacity": "precision at capacity"}

#: Bins of the calibration plot and of the expected calibration error.
CALIBRATION_BINS = 10


def quantile_bins(p: np.ndarray, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """The bin of each score: edges at the scores' quantiles, as ``calibration_curve``'s
    ``strategy="quantile"`` (equal scores always share a bin, so tied edges merge bins)."""
    p = np.asarray(p, dtype=float)
    edges = np.percentile(p, np.linspace(0, 100, bins + 1))
    return np.searchsorted(edges[1:-1], p)


def expected_calibration_error(y, p, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error over quantile bins: the mean, weighted by each bin's share of
    the rows, of |observed churn rate - mean predicted probability| in the bin."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) == 0:
        raise ValueError("no rows to measure calibration on")
    which = quantile_bins(p, bins)
    count = np.bincount(which)
    used = count > 0
    gap = np.abs(np.bincount(which, weights=y)[used] - np.bincount(which, weights=p)[used])
    return float(gap.sum() / len(y))


def at_capacity(y, p, dates, capacity: Capacity) -> dict[str, float]:
    """Precision and recall at capacity: on each date, the ``capacity.of(n)`` highest scores of
    that date's ``n`` rows (its active customers) are the ones a team would contact; precision
    is the share of them who churned, recall the share of that date's churners among them.
    Each is averaged over the dates (recall over the dates that have a churner); ties in score
    keep the rows' order."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float),
                          "date": np.asarray(dates)})
    precision, recall = [], []
    for _, rows in frame.groupby("date", sort=True):
        top = rows.y.to_numpy()[np.argsort(-rows.p.to_numpy(), kind="stable")]
        hits = top[:capacity.of(len(rows))]
        precision.append(hits.mean())
        if top.sum() > 0:
            recall.append(hits.sum() / top.sum())
    return {"precision_at_capacity": float(np.mean(precision)),
            "recall_at_capacity": float(np.mean(recall)) if recall else float("nan")}


def metrics(y, p, dates=None, capacity: Capacity | None = None) -> dict[str, float]:
    """The validation metrics of scores ``p`` for labels ``y``; with each row's observation
    ``dates``, also precision and recall at ``capacity`` (default 5 %)."""
    found = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "top_decile_lift": top_decile_lift(y, p),
        "ece": expected_calibration_error(y, p),
    }
    if dates is not None:
        found |= at_capacity(y, p, dates, capacity or DEFAULT_CAPACITY)
    return found


def plot_curves(y, scores: dict[str, np.ndarray], out: Path) -> list[Path]:
    """ROC, precision-recall, calibration and lift-by-decile plots, one PNG each."""
    with extra_imports("report", "the training report's plots"):
        # deferred: the report extra
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

    reach = [0.0]  # the largest probability or rate drawn: the calibration plot zooms to it

    def calibration(ax, label, p):
        observed, predicted = calibration_curve(y, p, n_bins=CALIBRATION_BINS,
                                                strategy="quantile")
        ax.plot(predicted, observed, marker="o",
                label=f"{label} (ECE {expected_calibration_error(y, p):.4f})")
        reach[0] = max(reach[0], float(np.max(predicted)), float(np.max(observed)))
        top = min(1.0, 1.05 * reach[0]) or 1.0
        ax.plot([0, top], [0, top], ":", color="grey")
        ax.set(xlim=(0, top), ylim=(0, top))

    def lift(ax, label, p):
        order = np.argsort(-p, kind="stable")
        deciles = np.array_split(y[order], 10)
        ax.plot(range(1, 11), [d.mean() / y.mean() for d in deciles], marker="o", label=label)
        ax.axhline(1, ls=":", color="grey")

    figure("roc", "ROC (validation period)", "false positive rate", "true positive rate", roc)
    figure("precision_recall", "Precision-recall", "recall", "precision", pr)
    figure("calibration", f"Calibration ({CALIBRATION_BINS} quantile bins, zoomed to the scores)",
           "mean predicted churn probability", "observed churn rate", calibration)
    figure("lift", "Lift by score decile", "decile (1 = highest scores)", "lift", lift)
    return drawn


def plot_importance(importance: pd.DataFrame, out: Path) -> Path:
    with extra_imports("report", "the training report's plots"):
        # deferred: the report extra
        from matplotlib.figure import Figure

    top = importance.head(15).iloc[::-1]
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    ax.barh(top.feature, top.mean_auc_drop, xerr=top.std_auc_drop, color="tab:blue")
    ax.set(title="Permutation importance (validation)", xlabel="ROC AUC drop when shuffled")
    fig.tight_layout()
    fig.savefig(out / "permutation_importance.png", dpi=110)
    return out / "permutation_importance.png"


def _versus_markdown(versus: pd.DataFrame | None, md) -> str:
    if versus is None or versus.empty:
        return ""
    shown = versus[versus.metric.isin(["roc_auc", "pr_auc", "precision_at_capacity"])]
    table = pd.DataFrame({
        "model": shown.model, "metric": shown.metric,
        "minus the shipped candidate": [f"{m:+.3f} ± {s:.3f} ({lo:+.3f} to {hi:+.3f})"
                                        for m, s, lo, hi in zip(shown["mean"], shown["std"],
                                                                shown["min"], shown["max"])],
        "folds higher": [f"{h} of {n}" for h, n in zip(shown.folds_higher, shown.folds)]})
    return f"""
Paired, fold by fold, against the shipped candidate ({shown.versus.iloc[0]}): the same test
period for both, so its difficulty cancels.

{md(table)}
"""


def summary_markdown(meta, table: pd.DataFrame, ablation: pd.DataFrame,
                     importance: pd.DataFrame, counts: dict[str, int], selection=None,
                     backtest: pd.DataFrame | None = None,
                     versus: pd.DataFrame | None = None) -> str:
    def md(frame: pd.DataFrame) -> str:
        header = "| " + " | ".join(frame.columns) + " |"
        rule = "|" + "---|" * len(frame.columns)
        rows = ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)
                + " |" for row in frame.itertuples(index=False)]
        return "\n".join([header, rule, *rows])

    window = meta.train_window
    chosen = ""
    if selection is not None:
        chosen = f"""
## Model selection

Shipped: **{selection.sentence()}**. Ranked by validation
{METRIC_NAMES[selection.by]}, then ROC AUC; the winner was then refitted on all
{meta.selection.get('refit_rows', 0):,} labelled rows
({window.get('refit_start', '?')} .. {window.get('refit_end', '?')}, every label window ending
by the cut-off). The validation metrics are those of the fit on the training rows only.
ECE: expected calibration error over {CALIBRATION_BINS} quantile bins of the scores.
Precision and recall at capacity: of each observation date's
{meta.selection.get('capacity', '?')} riskiest active customers (the ones a team can contact),
the share who churned within the horizon, and the share of that date's churners among them,
averaged over the dates.
"""
    spread = ""
    if backtest is not None:
        shown = ["roc_auc", "pr_auc", "precision_at_capacity", "ece"]
        wide = backtest[backtest.metric.isin(shown)].assign(
            value=lambda f: [f"{m:.3f} ± {s:.3f} ({lo:.3f}-{hi:.3f})" for m, s, lo, hi
                             in zip(f["mean"], f["std"], f["min"], f["max"])])
        wide = wide.pivot(index="model", columns="metric", values="value").reset_index()
        spread = f"""
## Backtest ({meta.backtest.get('folds', '?')} rolling-origin folds)

Each fold trains on the rows whose label window ends by the start of its test period, and is
scored on that period. Mean ± standard deviation (min-max) over the folds; per fold in
`backtest.csv`.

{md(wide)}
{_versus_markdown(versus, md)}"""
    return f"""# Churn model report: {meta.model_version}

Feature service `{meta.feature_service}` ({len(meta.features)} features), horizon
{meta.horizon_days} days, observations every {meta.interval_days} days.
Training rows {window['train_start']} .. {window['train_end']} ({counts['train']:,} rows,
{counts['train_positives']:,} churners); validation from {window['validation_start']} to
{window['validation_end']} ({counts['validation']:,} rows, {counts['validation_positives']:,}
churners). Split by time; training labels end before the validation period starts.
{chosen}
## Validation metrics

{md(table)}
{spread}
## Ablation (the shipped model's kind, feature groups removed)

{md(ablation)}

## Permutation importance (top 10)

{md(importance.head(10))}

Plots: `roc.png`, `precision_recall.png`, `calibration.png`, `lift.png`,
`permutation_importance.png`.
"""


def horizons_markdown(summary: dict, table: pd.DataFrame | None) -> str:
    """The report's section on the longer horizons (empty without them)."""
    if not summary:
        return ""
    lines = [f"\n## Horizons: {', '.join(str(h) for h in summary['horizons'])} days\n",
             "One time-to-churn model (Cox, right-censored) against a classifier trained for "
             "each horizon alone, both fitted before the horizon's own later test period and "
             "scored on it against that horizon's labels; c-index: Harrell's concordance over "
             "the test period's rows, followed to the end of the data. The survival model ships "
             "unless the classifier ranks higher (the selection's metric, then ROC AUC). "
             "Shipped probabilities are then made non-decreasing with the horizon.\n"]
    if table is not None and not table.empty:
        header = ("| horizon | model | shipped | ROC AUC | PR AUC | Brier | ECE | c-index | "
                  "test rows (churners) | from |")
        lines += [header, "|" + "---|" * 10]
        for row in table.itertuples(index=False):
            lines.append(
                f"| {row.horizon_days} d | {row.model} | {'**yes**' if row.shipped else 'no'} "
                f"| {row.roc_auc:.3f} | {row.pr_auc:.3f} | {row.brier:.4f} | {row.ece:.4f} "
                f"| {row.c_index:.3f} | {row.test_rows:,} ({row.test_churners:,}) "
                f"| {str(row.test_start)[:10]} |")
    for horizon, why in summary.get("skipped", {}).items():
        lines.append(f"\nNo {horizon}-day probability ships: {why}.")
    lines.append("\nPer horizon and model in `horizons.csv`.\n")
    return "\n".join(lines)

"""The monitor report's plots, as PNG files.

Drawn on ``matplotlib.figure.Figure`` objects, not through pyplot: a library must not switch
the process's backend (in a notebook that would silence the user's own ``plt.show()``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from usage_features.extras import extra_imports
from usage_features.monitoring.drift import PSI_ALARM


def _figure(width: float, height: float):
    with extra_imports("report", "the monitor report's plots"):
        # deferred: the report extra
        from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def plot_feature_drift(drift: list[dict], out: Path) -> Path:
    fig, ax = _figure(7, 0.28 * len(drift) + 1.2)
    names = [d["feature"] for d in drift]
    values = [0.0 if np.isnan(d["psi"]) else d["psi"] for d in drift]
    ax.barh(names, values, color=["tab:red" if d["alarm"] else "tab:blue" for d in drift])
    ax.axvline(PSI_ALARM, color="tab:red", linestyle="--", linewidth=1, label="alarm")
    ax.invert_yaxis()
    ax.set(title="Feature drift: PSI, validation period -> today", xlabel="PSI")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def plot_score_distributions(reference, current, out: Path) -> Path:
    fig, ax = _figure(5.5, 4)
    high = float(np.nanquantile(np.concatenate([reference, current]), 0.995)) or 1.0
    bins = np.linspace(0, high, 40)
    for values, label in ((reference, "validation period"), (current, "today")):
        ax.hist(np.clip(values, 0, high), bins=bins, density=True, histtype="step", label=label)
    ax.set(title="Churn probability distribution", xlabel="churn probability",
           ylabel="density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def plot_realized(realized: list[dict], validation: dict, out: Path) -> Path:
    fig, ax = _figure(6, 4)
    scored = [r for r in realized if "roc_auc" in r]
    for metric, color in (("roc_auc", "tab:blue"), ("pr_auc", "tab:orange")):
        ax.plot([r["date"] for r in scored], [r[metric] for r in scored], "o-", color=color,
                label=f"{metric} realized")
        if metric in validation:
            ax.axhline(validation[metric], color=color, linestyle="--", linewidth=1,
                       label=f"{metric} validation")
    if not scored:
        ax.text(0.5, 0.5, "no snapshot old enough yet", ha="center", transform=ax.transAxes)
    ax.set(title="Realized performance by snapshot", ylim=(0, 1))
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out

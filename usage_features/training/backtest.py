"""Rolling-origin backtest: is a difference between candidates larger than the noise?

The last ``test_share`` of observation times is cut into ``folds`` consecutive test periods.
Fold ``k`` trains every candidate on the rows whose label window ends by the start of its test
period (earlier rows, purged as :func:`~usage_features.training.labels.time_split` purges) and
scores them on the rows of that period. Each metric's mean, standard deviation, minimum and
maximum over the folds tell a real lead from a lucky validation period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from usage_features.domain.capacity import Capacity
from usage_features.features.retrieval import TIMESTAMP
from usage_features.training.labels import LabelError
from usage_features.training.selection import Candidate, fit_all, metrics_table, score_all


@dataclass(frozen=True)
class Fold:
    number: int
    train: pd.DataFrame
    test: pd.DataFrame
    #: first and last observation time of the test period
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def rolling_origin_folds(rows: pd.DataFrame, horizon_days: int, folds: int,
                         test_share: float = 0.25) -> list[Fold]:
    """The folds, earliest test period first; a clear error when the data cannot give them."""
    if folds < 1:
        raise ValueError("a backtest needs at least one fold")
    times = np.sort(rows.event_timestamp.unique())
    tested = max(folds, round(len(times) * test_share))
    if tested >= len(times):
        raise LabelError(f"a {folds}-fold backtest needs more than {tested} observation times; "
                         f"the data has {len(times)}: use fewer folds or more history")
    horizon = pd.Timedelta(days=horizon_days)
    out = []
    for number, block in enumerate(np.array_split(times[-tested:], folds), start=1):
        start, end = pd.Timestamp(block[0]), pd.Timestamp(block[-1])
        test = rows[(rows.event_timestamp >= start) & (rows.event_timestamp <= end)]
        train = rows[rows.event_timestamp + horizon <= start]
        for period, part in (("training", train), ("test", test)):
            if part.label.nunique() < 2:
                raise LabelError(f"backtest fold {number} (test {start:%Y-%m-%d} .. "
                                 f"{end:%Y-%m-%d}): its {period} rows ({len(part):,}) do not "
                                 "hold both classes; use fewer folds or more history")
        out.append(Fold(number, train, test, start, end))
    return out


def run_backtest(rows: pd.DataFrame, models: list[Candidate], horizon_days: int, folds: int,
                 test_share: float = 0.25, capacity: Capacity | None = None) -> pd.DataFrame:
    """One row per fold and candidate: the fold, its period and row counts, the metrics."""
    results = []
    for fold in rolling_origin_folds(rows, horizon_days, folds, test_share):
        scores = score_all(fit_all(models, fold.train), fold.test)
        table = metrics_table(fold.test.label.to_numpy(), scores,
                              fold.test[TIMESTAMP].to_numpy(), capacity)
        table.insert(0, "fold", fold.number)
        table.insert(1, "test_start", str(fold.test_start))
        table.insert(2, "test_end", str(fold.test_end))
        table.insert(3, "train_rows", len(fold.train))
        table.insert(4, "test_rows", len(fold.test))
        results.append(table)
    return pd.concat(results, ignore_index=True)


def spread(per_fold: pd.DataFrame) -> pd.DataFrame:
    """Per candidate and metric: mean, std (sample, ddof 1; 0 for one fold), min and max."""
    metrics = [c for c in per_fold.columns
               if c not in ("fold", "test_start", "test_end", "train_rows", "test_rows", "model")]
    long = per_fold.melt(id_vars="model", value_vars=metrics, var_name="metric")
    summary = long.groupby(["model", "metric"], sort=False).value.agg(
        ["mean", "std", "min", "max"]).reset_index()
    summary["std"] = summary["std"].fillna(0.0)
    return summary


def paired_differences(per_fold: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per other candidate and metric: its value minus ``reference``'s in the same fold, as
    mean, std, min, max, and in how many folds it was higher. Both face the same test period,
    so the period's difficulty cancels: a lead smaller than the spread of the candidates'
    own metrics can still be steady."""
    metrics = [c for c in per_fold.columns
               if c not in ("fold", "test_start", "test_end", "train_rows", "test_rows", "model")]
    wide = per_fold.set_index(["model", "fold"])[metrics]
    base = wide.loc[reference]
    rows = []
    for model in dict.fromkeys(per_fold.model):
        if model == reference:
            continue
        difference = wide.loc[model] - base
        for metric in metrics:
            d = difference[metric]
            rows.append({"model": model, "versus": reference, "metric": metric,
                         "mean": float(d.mean()), "std": float(d.std()) if len(d) > 1 else 0.0,
                         "min": float(d.min()), "max": float(d.max()),
                         "folds_higher": int((d > 0).sum()), "folds": len(d)})
    return pd.DataFrame(rows)


__all__ = ["Fold", "paired_differences", "rolling_origin_folds", "run_backtest", "spread"]

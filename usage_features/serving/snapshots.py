"""Daily score snapshots: ``DIR/data/scores/date=YYYY-MM-DD/scores.parquet``, one per day.

A snapshot holds one row per scored customer: ``customer_id``, ``churn_probability``,
``risk_band``, ``reasons`` (a list of sentences), ``model_version`` and ``as_of`` (UTC). Writing
the same day again replaces that day's file atomically, so a re-run changes nothing and a
killed run leaves the previous file whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from usage_features.adapters.files import atomic_path

SCHEMA = pa.schema([
    ("customer_id", pa.string()),
    ("churn_probability", pa.float64()),
    ("risk_band", pa.string()),
    ("reasons", pa.list_(pa.string())),
    ("model_version", pa.string()),
    ("as_of", pa.timestamp("us", tz="UTC")),
])
FILE_NAME = "scores.parquet"


def snapshot_path(scores_dir: Path, day: date) -> Path:
    return Path(scores_dir) / f"date={day.isoformat()}" / FILE_NAME


def scores_frame(scores: Iterable, as_of: datetime) -> pd.DataFrame:
    """The snapshot rows of scored customers (``Score`` objects with a probability)."""
    rows = [{"customer_id": s.customer_id, "churn_probability": s.churn_probability,
             "risk_band": s.risk_band, "reasons": list(s.reasons),
             "model_version": s.model_version, "as_of": as_of}
            for s in scores if s.churn_probability is not None]
    return pa.Table.from_pylist(rows, schema=SCHEMA).to_pandas()


def write_snapshot(scores_dir: Path, frame: pd.DataFrame, day: date) -> Path:
    """Write (or replace) the snapshot of ``day``; returns its path."""
    target = snapshot_path(scores_dir, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame[SCHEMA.names], schema=SCHEMA, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
    return target


def snapshot_days(scores_dir: Path) -> list[date]:
    """The days that have a snapshot, oldest first."""
    days = [date.fromisoformat(p.parent.name.removeprefix("date="))
            for p in Path(scores_dir).glob(f"date=*/{FILE_NAME}")]
    return sorted(days)


def read_snapshot(scores_dir: Path, day: date) -> pd.DataFrame:
    return pq.read_table(snapshot_path(scores_dir, day), schema=SCHEMA).to_pandas()


def read_snapshots(scores_dir: Path) -> pd.DataFrame:
    """Every snapshot, with its ``date`` column."""
    frames = [read_snapshot(scores_dir, day).assign(date=day) for day in snapshot_days(scores_dir)]
    if not frames:
        return pa.Table.from_pylist([], schema=SCHEMA).to_pandas().assign(date=[])
    return pd.concat(frames, ignore_index=True)

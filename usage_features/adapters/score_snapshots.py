"""Daily score snapshots: ``DIR/data/scores/date=YYYY-MM-DD/scores.parquet``, one per day.

A snapshot holds one row per score of that day, its columns the :class:`Score` fields (see
:func:`schema`: one ``churn_probability_<days>d`` column per horizon the scores carry). Writing
the same day again replaces that day's file atomically, so a re-run changes nothing and a
killed run leaves the previous file whole. Snapshots written before a field existed are read
with that column empty (the default horizons' columns included).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from usage_features.adapters.files import atomic_path
from usage_features.adapters.stored_files import reading
from usage_features.domain.scores import (
    DEFAULT_HORIZONS,
    Score,
    ScoreSink,
    score_columns,
    scores_horizons,
)

_TIME = pa.timestamp("us", tz="UTC")
#: The columns every snapshot is read with (each longer horizon's probability, a
#: ``churn_probability_<days>d`` float64 column, follows ``churn_probability``: see
#: :func:`schema`).
SCHEMA = pa.schema([
    ("customer_id", pa.string()),
    ("as_of", _TIME),
    ("status", pa.string()),
    ("model_version", pa.string()),
    ("churn_probability", pa.float64()),
    ("risk_band", pa.string()),
    ("reasons", pa.list_(pa.string())),
    ("features_from", pa.string()),
    ("latest_event_at", _TIME),
    ("fresh", pa.bool_()),
    ("churned_at", _TIME),
    ("error", pa.string()),
    ("expected_days_to_churn", pa.float64()),
])
FILE_NAME = "scores.parquet"
#: The horizons a snapshot is read with even when written before them (or by a model without
#: them): their columns empty.
READ_HORIZONS = DEFAULT_HORIZONS
_HORIZON_COLUMN = re.compile(r"churn_probability_(\d+)d")


def schema(horizons=()) -> pa.Schema:
    """:data:`SCHEMA` with a probability column per horizon (see ``score_columns``)."""
    types = {f.name: f.type for f in SCHEMA}
    return pa.schema([(c, types.get(c, pa.float64())) for c in score_columns(horizons)])


def snapshot_path(scores_dir: Path, day: date) -> Path:
    return Path(scores_dir) / f"date={day.isoformat()}" / FILE_NAME


def scores_table(scores: Sequence[Score]) -> pa.Table:
    """``scores`` as rows of :func:`schema` for their horizons."""
    # each field read by name (Score.row; dataclasses.astuple deep-copies every value: 0.7 ms
    # a score)
    target = schema(scores_horizons(scores))
    rows = [s.row() for s in scores]
    return pa.Table.from_arrays(
        [pa.array([row.get(f.name) for row in rows], type=f.type) for f in target],
        schema=target)


class ParquetSnapshots(ScoreSink):
    """The repo's snapshot folder as a :class:`ScoreSink`."""

    def __init__(self, scores_dir: Path) -> None:
        self.scores_dir = Path(scores_dir)

    @property
    def name(self) -> str:
        return str(self.scores_dir)

    def write(self, scores: Sequence[Score], day: date) -> int:
        """Write (or replace) the snapshot of ``day``."""
        target = snapshot_path(self.scores_dir, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            pq.write_table(scores_table(scores), tmp)
        return len(scores)


def snapshot_days(scores_dir: Path) -> list[date]:
    """The days that have a snapshot, oldest first."""
    days = [date.fromisoformat(p.parent.name.removeprefix("date="))
            for p in Path(scores_dir).glob(f"date=*/{FILE_NAME}")]
    return sorted(days)


def read_snapshot(scores_dir: Path, day: date) -> pd.DataFrame:
    path = snapshot_path(scores_dir, day)
    with reading(path):
        table = pq.read_table(path)
    written = {int(m.group(1)) for name in table.column_names
               if (m := _HORIZON_COLUMN.fullmatch(name))}
    target = schema(written | set(READ_HORIZONS))
    for index, field in enumerate(target):  # a field the file's writer did not know yet
        if field.name not in table.column_names:
            table = table.add_column(index, field, pa.nulls(table.num_rows, field.type))
    return table.select(target.names).cast(target).to_pandas()


def read_snapshots(scores_dir: Path) -> pd.DataFrame:
    """Every snapshot, with its ``date`` column."""
    frames = [read_snapshot(scores_dir, day).assign(date=day) for day in snapshot_days(scores_dir)]
    if not frames:
        return schema(READ_HORIZONS).empty_table().to_pandas().assign(date=[])
    return pd.concat(frames, ignore_index=True)

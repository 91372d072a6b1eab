"""The daily score snapshots held in memory for the web pages, each read once per version.

A page needs one customer's probability on every snapshot day (the score history), or every
customer's on the day before the latest (the change since the previous snapshot). Reading a
year of snapshot files per page view would take seconds; each day's file is read once into
compact arrays (ids sorted, each id one shared string across days), looked up by binary search,
and read again only when its file changes (a re-run of that day replaces it).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from usage_features.adapters.score_snapshots import read_snapshot, snapshot_days, snapshot_path


@dataclass(frozen=True)
class DayScores:
    """One snapshot day: each scored customer's probability and band, by id."""

    day: date
    #: When the day's scores were computed (the snapshot's ``as_of``); None for an empty day.
    as_of: datetime | None
    ids: np.ndarray
    probability: np.ndarray
    band: np.ndarray

    def find(self, customer_id: str) -> int | None:
        """The customer's row, None when the day has no score for it."""
        at = int(np.searchsorted(self.ids, customer_id))
        return at if at < len(self.ids) and self.ids[at] == customer_id else None

    def probabilities(self, customer_ids) -> np.ndarray:
        """Each customer's probability on this day (NaN: none)."""
        ids = np.asarray(customer_ids, dtype=object)
        if not len(self.ids):
            return np.full(len(ids), np.nan)
        at = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return np.where(self.ids[at] == ids, self.probability[at], np.nan)


class SnapshotDays:
    """The snapshots of one repo (``DIR/data/scores``), day by day, cached per file version."""

    def __init__(self, scores_dir: Path) -> None:
        self.scores_dir = Path(scores_dir)
        self._days: dict[date, tuple[int, DayScores]] = {}
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}  # one string object per id, shared by every day

    def days(self) -> list[date]:
        """The days that have a snapshot, oldest first (a day whose file is gone is forgotten)."""
        days = snapshot_days(self.scores_dir)
        with self._lock:
            for gone in set(self._days) - set(days):
                del self._days[gone]
        return days

    def stamp(self, day: date) -> int | None:
        """The snapshot file's version (its modification time), None when it is gone."""
        try:
            return snapshot_path(self.scores_dir, day).stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def frame(self, day: date) -> pd.DataFrame:
        """The day's whole snapshot (every column), read now."""
        return read_snapshot(self.scores_dir, day)

    def day(self, day: date) -> DayScores:
        """The day's scores, read once per version of its file."""
        stamp = self.stamp(day)
        with self._lock:
            cached = self._days.get(day)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        scores = self._read(day)
        with self._lock:
            self._days[day] = (stamp, scores)
        return scores

    def _read(self, day: date) -> DayScores:
        frame = read_snapshot(self.scores_dir, day)
        scored = frame[frame.churn_probability.notna()].sort_values("customer_id")
        ids = np.array([self._ids.setdefault(c, sys.intern(c)) for c in scored.customer_id],
                       dtype=object)
        as_of = frame.as_of.max()
        return DayScores(day, None if pd.isna(as_of) else as_of.to_pydatetime(), ids,
                         scored.churn_probability.to_numpy(dtype=float),
                         scored.risk_band.to_numpy(dtype=object))

    def history(self, customer_id: str) -> list[tuple[DayScores, int]]:
        """Every snapshot day that scored the customer, oldest first, with its row."""
        out = []
        for day in self.days():
            scores = self.day(day)
            row = scores.find(customer_id)
            if row is not None:
                out.append((scores, row))
        return out


__all__ = ["DayScores", "SnapshotDays"]

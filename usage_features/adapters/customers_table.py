"""The repo's customers table read for scoring: churn dates by customer, the active customers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from usage_features.adapters.stored_files import reading


class ChurnDates:
    """``churned_at`` of the repo's customers table, by customer; reread when it is replaced."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: int | None = None
        self._dates: dict[str, float] = {}

    def seconds(self, customer_ids) -> np.ndarray:
        """Epoch seconds of each customer's ``churned_at`` (NaN: not churned, or not listed)."""
        dates = self._current()
        return np.array([dates.get(c, np.nan) for c in customer_ids], dtype=float)

    def _current(self) -> dict[str, float]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._stamp, self._dates = None, {}
            return self._dates
        if stamp != self._stamp:
            with reading(self.path):
                table = pq.read_table(self.path, columns=["customer_id", "churned_at"])
            table = table.filter(pc.is_valid(table.column("churned_at")))
            ids = table.column("customer_id").to_pylist()
            times = table.column("churned_at").to_pylist()
            self._dates = {c: t.timestamp() for c, t in zip(ids, times)}
            self._stamp = stamp
        return self._dates


def active_customers(customers: Path, now: datetime) -> list[str]:
    """Customers signed up at or before ``now`` and not churned by then, in id order."""
    if not Path(customers).exists():
        raise FileNotFoundError(
            f"no customers table in {customers}: run `usage-features load-customers "
            "FILE` (or pass --customers FILE) so refresh knows who is an active customer")
    with reading(customers):
        table = pq.read_table(customers, columns=["customer_id", "signup_at", "churned_at"])
    live = pc.and_(pc.less_equal(table["signup_at"], now),
                   pc.or_kleene(pc.is_null(table["churned_at"]),
                                pc.greater(table["churned_at"], now)))
    return sorted(table.filter(live)["customer_id"].to_pylist())

"""How many customers a customer-success team can contact per scoring date: the K of
"precision at capacity" (the share of the K riskiest customers who really leave)."""

from __future__ import annotations

import math
from dataclasses import dataclass


class CapacityError(ValueError):
    """A capacity that is neither a positive count nor a share in (0, 100] %."""


@dataclass(frozen=True)
class Capacity:
    """Either a fixed number of customers (``count``) or a share of the date's active ones."""

    count: int | None = None
    share: float | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.share is None):
            raise CapacityError("a capacity is a count or a share, not both or neither")
        if self.count is not None and not (isinstance(self.count, int) and self.count >= 1):
            raise CapacityError(f"a capacity count must be a whole number >= 1, got "
                                f"{self.count!r}")
        if self.share is not None and not 0 < self.share <= 1:
            raise CapacityError(f"a capacity share must be in (0, 100] %, got {self.share!r}")

    @classmethod
    def parse(cls, value: int | str) -> Capacity:
        """``50`` (customers) or ``"5%"`` (of the date's active customers)."""
        if isinstance(value, bool):
            raise CapacityError(f"capacity must be a count or a percentage, got {value!r}")
        if isinstance(value, int):
            return cls(count=value)
        text = str(value).strip()
        if text.endswith("%"):
            try:
                return cls(share=float(text[:-1]) / 100)
            except ValueError:
                pass
        elif text.isdigit():
            return cls(count=int(text))
        raise CapacityError(f"capacity must be a count (50) or a percentage (5%), got "
                            f"{value!r}")

    def of(self, active: int) -> int:
        """K for a date with ``active`` customers: at least 1, at most all of them."""
        k = self.count if self.count is not None else math.ceil(self.share * active)
        return max(1, min(k, active))

    def __str__(self) -> str:
        return f"{self.count}" if self.count is not None else f"{self.share:.0%}"


#: A team that can call one customer in twenty each scoring date.
DEFAULT_CAPACITY = Capacity(share=0.05)

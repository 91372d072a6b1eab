"""Value objects for the Usage domain."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from numbers import Real

#: Adoption below this, with declining event frequency, is the strongest early churn signal.
LOW_ADOPTION_THRESHOLD = 0.2
#: A customer's "early life": the first days after signup in which that signal matters most.
EARLY_LIFE_DAYS = 90
#: The canonical 8-4-4-4-12 hexadecimal UUID form accepted for event ids (any case).
UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
_UUID_RE = re.compile(UUID_PATTERN)
#: The longest event id, in characters (warehouse ids are integers, UUIDs or other text).
MAX_EVENT_ID_LENGTH = 256


class EventType(StrEnum):
    """Product event types tracked in usage_events (a monitoring SaaS product).

    ``integration_connect`` events are strong retention signals: a customer who wires the
    product into their stack has switching costs. Absence of ``monitoring_run`` events is an
    early churn indicator: the product's core job is not being done.
    """

    LOGIN = "login"
    DASHBOARD_VIEW = "dashboard_view"
    MONITORING_RUN = "monitoring_run"
    ALERT_CONFIGURED = "alert_configured"
    REPORT_EXPORT = "report_export"
    INTEGRATION_CONNECT = "integration_connect"
    USER_INVITED = "user_invited"
    API_CALL = "api_call"


@dataclass(frozen=True, slots=True)
class FeatureAdoptionScore:
    """Composite 0-1 score reflecting breadth and depth of feature usage.

    Scores below :data:`LOW_ADOPTION_THRESHOLD` combined with declining event frequency are the
    strongest leading indicators of churn in the first :data:`EARLY_LIFE_DAYS` days.
    """

    value: float

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, Real):
            raise ValueError(
                f"feature adoption score must be a number, got {type(self.value).__name__} "
                f"{self.value!r}"
            )
        value = float(self.value)
        if math.isnan(value):
            raise ValueError("feature adoption score must not be NaN")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"feature adoption score must be within [0, 1], got {value}")
        object.__setattr__(self, "value", value)

    @property
    def is_low(self) -> bool:
        """True below :data:`LOW_ADOPTION_THRESHOLD`."""
        return self.value < LOW_ADOPTION_THRESHOLD

    def __float__(self) -> float:
        return self.value


def is_early_life(tenure_days):
    """Within the customer's early life: ``0 <= tenure_days < EARLY_LIFE_DAYS``.

    Element-wise: a number gives a ``bool``; an array type with comparison operators (NumPy)
    gives an array, so feature code vectorises over this very definition. A NaN tenure (an
    unknown signup) is not early life.
    """
    return (tenure_days >= 0) & (tenure_days < EARLY_LIFE_DAYS)


def early_life_churn_signal(adoption_score, tenure_days, frequency_declining):
    """The domain's strongest leading churn indicator, element-wise over plain values.

    Adoption below :data:`LOW_ADOPTION_THRESHOLD` combined with declining event frequency,
    within the customer's first :data:`EARLY_LIFE_DAYS` days. ``adoption_score`` is a float
    (NaN: no score yet, never low), ``frequency_declining`` a bool. Like :func:`is_early_life`,
    it takes numbers or arrays of them (the request-time feature ``low_adoption_early_life``
    runs it over NumPy arrays); the operators are the only thing it asks of them.
    """
    return ((adoption_score < LOW_ADOPTION_THRESHOLD) & frequency_declining
            & is_early_life(tenure_days))


def is_early_life_churn_signal(
    score: FeatureAdoptionScore, tenure_days: float, frequency_declining: bool
) -> bool:
    """:func:`early_life_churn_signal` for one customer's validated adoption score."""
    return bool(early_life_churn_signal(score.value, tenure_days, bool(frequency_declining)))


def is_valid_uuid(text: str) -> bool:
    """True for a UUID in the canonical 8-4-4-4-12 hexadecimal form."""
    return isinstance(text, str) and _UUID_RE.match(text) is not None

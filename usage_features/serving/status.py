"""Whether a customer at time t can be scored: active, churned, incomplete or unknown.

The rule is the domain's (:mod:`usage_features.domain.status`), run over arrays by
:func:`usage_features.features.request_time.statuses`; the customers table is read by
:mod:`usage_features.adapters.customers_table`. This module gathers them under the name the
serving code has always used.
"""

from __future__ import annotations

from usage_features.adapters.customers_table import ChurnDates, active_customers
from usage_features.domain.status import ACTIVE, CHURNED, INCOMPLETE, INVALID, UNKNOWN
from usage_features.features.request_time import statuses

__all__ = ["ACTIVE", "CHURNED", "INCOMPLETE", "INVALID", "UNKNOWN", "ChurnDates",
           "active_customers", "statuses"]

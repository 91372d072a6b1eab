"""Why a customer scores as they do, in plain words drawn from the served features.

Each rule reads a few features and, when its signal is present, returns a sentence and a
severity; the most severe few are shown. A rule whose features contradict each other (a
recency that the windowed counts rule out, a negative recency: features not of one moment)
gives no reason rather than a sentence that contradicts itself. The rules follow the domain's churn signals: silence,
usage decay, no monitoring runs, low adoption early in life, no integrations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from usage_features.domain.value_objects import LOW_ADOPTION_THRESHOLD


def _value(features: Mapping[str, object], name: str) -> float:
    value = features.get(name)
    return math.nan if value is None else float(value)


def explain(features: Mapping[str, object], limit: int = 3) -> list[str]:
    """Up to ``limit`` reasons, most severe first (empty when no risk signal is present)."""
    f = lambda name: _value(features, name)  # noqa: E731
    found: list[tuple[float, str]] = []
    silent = f("days_since_last_event")
    if math.isnan(silent) and f("event_count_90d") == 0:
        found.append((4.0, "no product activity recorded"))
    elif silent >= 14 and not f("event_count_7d") > 0:  # a count in [D - 7 d, D) rules it out
        found.append((3.0 + min(silent, 90) / 90, f"no activity for {silent:.0f} days"))
    ratio, before = f("decay_ratio_30d_prev30d"), f("event_count_prev30d")
    if before >= 5 and ratio < 0.8:
        found.append((2.0 + (1 - ratio),
                      f"30-day activity down {(1 - ratio) * 100:.0f}% vs the previous 30 days"))
    weekly = f("decay_ratio_7d_30d")
    if f("event_count_30d") >= 4 and weekly < 0.5:
        found.append((1.5 + (1 - weekly),
                      f"last 7 days at {weekly * 100:.0f}% of the month's weekly rate"))
    last = f("days_since_last_monitoring_run")
    # no run in the window [D - 30 d, D) means the last one is over 30 days before t >= D
    if f("monitoring_run_count_30d") == 0 and (math.isnan(last) or last > 30):
        found.append((2.2, "never ran a monitoring_run" if math.isnan(last) else
                      f"no monitoring_run in 30 days (last {last:.0f} days ago)"))
    adoption = f("adoption_score_latest")
    if bool(features.get("is_first_90_days")) and adoption < LOW_ADOPTION_THRESHOLD:
        severity = 3.5 if bool(features.get("low_adoption_early_life")) else 2.5
        found.append((severity, f"adoption {adoption:.2f} in first 90 days"))
    change = f("adoption_score_change_30d")
    if change <= -0.1:
        found.append((1.8, f"adoption score fell {-change:.2f} in 30 days"))
    if f("integration_connect_count_90d") == 0:
        found.append((1.0, "no integration connected in 90 days"))
    found.sort(key=lambda item: -item[0])
    return [text for _, text in found[:limit]]

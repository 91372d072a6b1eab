"""The benchmark-only likelihood detector (benchmarks/bench_ceiling_likelihood.py): point in
time, and a visible decline scores above a flat series."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usage_features.simulation.config import mechanism_behaviour

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ceiling_likelihood.py"
_SPEC = importlib.util.spec_from_file_location("bench_ceiling_likelihood", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault(_SPEC.name, bench)  # dataclasses look their module up
_SPEC.loader.exec_module(bench)

START = pd.Timestamp("2025-01-01", tz="UTC")
DAYS = 260
#: The row's time: the UTC midnight starting day 200.
T_DAY = 200


def _day_events(customer: str, day: int, logins: int, advanced: int) -> list[tuple]:
    at = START + pd.Timedelta(days=day, hours=10)
    rows = [(customer, at + pd.Timedelta(minutes=i), "login", 0.5) for i in range(logins)]
    rows += [(customer, at + pd.Timedelta(hours=2, minutes=i), "monitoring_run", 0.5)
             for i in range(advanced)]
    return rows


def _series(customer: str, decline_from: int | None, days: int = DAYS) -> list[tuple]:
    """Usage every weekday (6 logins, 6 monitoring runs); from ``decline_from`` the counts fall
    as the default mechanism's decay of 40 days (advanced ones faster), weekends empty."""
    rows = []
    for day in range(1, days):
        if (START + pd.Timedelta(days=day)).weekday() >= 5:
            continue
        g = 1.0
        if decline_from is not None and day >= decline_from:
            g = 0.05 + 0.95 * max(0.0, 1 - (day - decline_from) / 40) ** 1.5
        logins, advanced = round(6 * g), round(6 * g ** 1.5)
        if logins + advanced:
            rows += _day_events(customer, day, logins, advanced)
    return rows


def _counts(rows: list[tuple]):
    events = pd.DataFrame(rows, columns=["customer_id", "timestamp", "event_type",
                                         "feature_adoption_score"])
    customers = pd.DataFrame({"customer_id": ["flat", "decline"],
                              "signup_at": [START + pd.Timedelta(hours=3)] * 2,
                              "plan": ["starter", "starter"]})
    return bench.daily_counts(events, customers, START.value // 1000, DAYS,
                              date(2025, 1, 1).weekday())


def _scores(rows: list[tuple]) -> np.ndarray:
    t = START + pd.Timedelta(days=T_DAY)
    return bench.detector_scores(_counts(rows), ["flat", "decline"], [t, t],
                                 mechanism_behaviour("default"))


@pytest.fixture(scope="module")
def before_t() -> list[tuple]:
    return _series("flat", None, T_DAY) + _series("decline", T_DAY - 20, T_DAY)


def test_a_decline_under_way_scores_above_a_flat_series(before_t):
    flat, decline = _scores(before_t)
    assert decline > 0.3
    assert flat < 0.05
    assert decline > 10 * flat


def test_events_at_or_after_t_do_not_change_the_score(before_t):
    t = START + pd.Timedelta(days=T_DAY)
    later = [("flat", t, "login", 0.5), ("decline", t, "api_call", 0.9)]
    later += [row for day in range(T_DAY, DAYS) for row in
              _day_events("flat", day, 0, 30) + _day_events("decline", day, 40, 40)]
    later += [("decline", t + pd.Timedelta(days=3), "integration_connect", 0.9)]
    np.testing.assert_array_equal(_scores(before_t), _scores(before_t + later))


def test_an_event_just_before_t_can_change_the_score(before_t):
    """The window does reach the last day before t (the check above is not vacuous)."""
    t = START + pd.Timedelta(days=T_DAY)
    burst = [("decline", t - pd.Timedelta(hours=1), "api_call", 0.5)] * 40
    assert not np.array_equal(_scores(before_t), _scores(before_t + burst))

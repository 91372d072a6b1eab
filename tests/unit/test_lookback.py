"""The incremental recompute's lookback and carry row, read from the spec: the lookback grows
with any longer window, and a feature whose whole-history aggregate does not compose makes the
recompute read the whole history (``carry_sql`` is None), never a wrong row."""

from __future__ import annotations

from dataclasses import replace

import pytest

from usage_features.domain.vocabulary import parse_vocabulary
from usage_features.features import spec as spec_module
from usage_features.features import sql as sql_module
from usage_features.features.spec import (
    BREADTH_DAYS,
    HISTORY,
    HISTORY_30D_AGO,
    LAST_EVENT_AT,
    WINDOWS,
    Feature,
    Window,
    change_offsets,
    feature_spec,
)
from usage_features.features.sql import carry_sql, lookback_days

BREADTH = parse_vocabulary({"a": {"role": "core"}, "b": {}, "c": {}}, "reject")


def with_feature(sql: str, spec=None, **kwargs):
    spec = spec or feature_spec()
    extra = Feature("probe", "float64", sql, "a probe", stored=True, served=False, **kwargs)
    return replace(spec, windowed=(*spec.windowed, extra))


def test_the_lookback_covers_every_window_and_change_offset():
    spec = feature_spec()
    reach = max((w.days or 0) + w.offset for w in WINDOWS)
    assert lookback_days(spec) > max(reach, *change_offsets())
    breadth = feature_spec(parse_vocabulary({"a": {}, "b": {}}, "reject"))
    assert breadth.breadth_counts
    assert lookback_days(breadth) > reach + BREADTH_DAYS


def test_a_longer_window_lengthens_the_lookback(monkeypatch):
    before = lookback_days(feature_spec())
    longer = (*WINDOWS, Window("w_days_91_180", 90, offset=90))
    monkeypatch.setattr(spec_module, "WINDOWS", longer)
    monkeypatch.setattr(sql_module, "WINDOWS", longer)
    assert lookback_days(feature_spec()) >= 180 + 2 > before


def test_the_seed_features_carry_their_history_aggregates():
    carry = carry_sql(feature_spec())
    assert carry[LAST_EVENT_AT] == f"max({LAST_EVENT_AT})"
    assert carry["last_score"].startswith("max_by(last_score, ")
    assert carry["n_events"] == "max(n_events)"  # "the latest" is of days with events
    assert "score_sum" not in carry  # read by bounded windows only


def test_breadth_needs_no_carry_of_its_deltas():
    carry = carry_sql(feature_spec(BREADTH))
    assert carry is not None and "breadth_delta" not in carry


@pytest.mark.parametrize("sql", [
    f"avg(n_events) OVER {HISTORY.name}",  # an average does not compose from one row
    f"count(*) OVER {HISTORY.name}",
    f"sum(CASE WHEN n_events > 1 THEN 1 END) OVER {HISTORY_30D_AGO.name}",
    f"sum(n_events) OVER {HISTORY.name}",  # n_events is carried as a max (the latest's key)
    f"min({LAST_EVENT_AT}) OVER {HISTORY.name}",  # last_event_at is carried as a max
    f"max(no_such_column) OVER {HISTORY.name}",
])
def test_an_aggregate_that_does_not_compose_reads_the_whole_history(sql):
    assert carry_sql(with_feature(sql)) is None


def test_breadth_weights_over_the_whole_history_read_the_whole_history():
    assert carry_sql(with_feature(f"sum(breadth_weight) OVER {HISTORY.name}",
                                  feature_spec(BREADTH))) is None


def test_a_per_type_count_over_the_whole_history_reads_the_whole_history():
    spec = with_feature(f"coalesce(sum(n_login) OVER {HISTORY.name}, 0)",
                        type_count=("n_login", HISTORY.name))
    assert carry_sql(spec) is None


def test_a_composable_new_history_feature_is_carried():
    carry = carry_sql(with_feature(f"min(n_login) OVER {HISTORY_30D_AGO.name}"))
    assert carry["n_login"] == "min(n_login)"

"""The brute-force point-in-time join, on cases worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from tests.reference_pit import RefView, point_in_time_join, range_entity_rows

T = pd.Timestamp("2026-03-01", tz="UTC")
S = timedelta(seconds=1)


def view(**kwargs) -> RefView:
    rows = pd.DataFrame({
        "user": ["a", "a", "a", "b"],
        "ts": [T, T, T + 10 * S, T + 5 * S],
        "created": [T, T + S, T + 10 * S, T],
        "raw": [1.0, 2.0, 3.0, 9.0],
    })
    defaults = dict(name="v", rows=rows, keys={"user": "user"}, features=["x"],
                    timestamp="ts", created="created", field_mapping={"raw": "x"})
    return RefView(**{**defaults, **kwargs})


def entity(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "event_timestamp"])


class TestReferencePointInTimeJoin:
    def test_latest_row_at_or_before_wins_and_created_breaks_ties(self):
        out = point_in_time_join(entity(("a", T), ("a", T + 9 * S), ("a", T + 10 * S)), [view()])
        assert out.x.tolist() == [2.0, 2.0, 3.0]

    def test_with_the_created_cutoff_a_row_created_after_the_entity_time_is_not_a_candidate(
            self):
        rows = entity(("a", T + 0.5 * S), ("a", T + S))
        assert point_in_time_join(rows, [view()], created_cutoff=True).x.tolist() == [1.0, 2.0]
        assert point_in_time_join(rows, [view()]).x.tolist() == [2.0, 2.0]

    def test_rows_before_the_first_feature_row_and_unknown_keys_get_nulls_in_order(self):
        out = point_in_time_join(entity(("b", T), ("zz", T + 20 * S), ("b", T + 5 * S)),
                                 [view()])
        assert out.user.tolist() == ["b", "zz", "b"]
        assert out.x.tolist() == [None, None, 9.0]

    def test_a_fractional_ttl_keeps_a_row_just_inside_and_drops_one_just_outside(self):
        ttl = view(ttl=timedelta(seconds=1.5))
        out = point_in_time_join(entity(("b", T + 6.2 * S), ("b", T + 6.6 * S)), [ttl])
        assert out.x.tolist() == [9.0, None]

    def test_a_view_without_keys_matches_every_row(self):
        out = point_in_time_join(entity(("zz", T + 6 * S)), [view(keys={})])
        assert out.x.tolist() == [9.0]  # the latest row of all at or before T+6s (b's)

    def test_naive_entity_timestamps_are_utc_and_returned_as_given(self):
        naive = entity(("a", (T + 10 * S).tz_localize(None)))
        out = point_in_time_join(naive, [view()], full_feature_names=True)
        assert out.v__x.tolist() == [3.0]
        assert out.event_timestamp.dt.tz is None

    def test_range_rows_are_the_distinct_keyed_timestamps_in_the_range(self):
        rows = range_entity_rows([view()], T, T + 5 * S)
        assert list(rows.itertuples(index=False, name=None)) == [("a", T), ("b", T + 5 * S)]

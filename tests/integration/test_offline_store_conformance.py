"""The offline store against the brute-force point-in-time join, value by value.

Unlike Feast's universal suite (which compares sorted, de-duplicated frames), these compare row
by row: order, duplicate entity rows and the entity columns as given are part of the answer.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
import pytest

from tests.integration.offline_repo import (
    T0,
    entity_rows,
    ref_views,
    source_rows,
    write_repo,
)
from tests.reference_pit import RefView, point_in_time_join, range_entity_rows
from usage_features.features.store import apply_definitions, open_store

FEATURES = ["user_stats:score", "user_stats:visits", "user_merchant:amount", "global_stats:total"]


@pytest.fixture(scope="module")
def rows():
    return source_rows()


@pytest.fixture(scope="module")
def store(tmp_path_factory, rows):
    repo = write_repo(tmp_path_factory.mktemp("conformance"), rows)
    apply_definitions(repo)
    return open_store(repo)


def values(series: pd.Series) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            for v in series.astype(object)]


def assert_same_rows(out: pd.DataFrame, expected: pd.DataFrame, entity: pd.DataFrame,
                     check_dtype: bool = True) -> None:
    """Same columns in order; entity columns exactly as given; every feature value equal."""
    assert list(out.columns) == list(expected.columns)
    assert len(out) == len(expected)
    for column in entity.columns:
        pd.testing.assert_series_equal(out[column], entity[column].reset_index(drop=True),
                                       check_dtype=check_dtype)
    for column in expected.columns.difference(entity.columns):
        assert values(out[column]) == values(expected[column]), column


def reference(rows, entity, names=("user_stats", "user_merchant", "global_stats"), **kwargs):
    views = ref_views(rows, **{k: v for k, v in kwargs.items() if k != "full_feature_names"})
    return point_in_time_join(entity, [views[n] for n in names],
                              full_feature_names=kwargs.get("full_feature_names", False))


class TestAgainstTheBruteForceJoin:
    def test_every_value_row_order_and_duplicate_rows_match(self, store, rows):
        entity = entity_rows(rows)
        out = store.get_historical_features(entity_df=entity, features=FEATURES).to_df()
        assert_same_rows(out, reference(rows, entity), entity)

    def test_full_feature_names_match(self, store, rows):
        entity = entity_rows(rows, seed=11)
        out = store.get_historical_features(entity_df=entity, features=FEATURES,
                                            full_feature_names=True).to_df()
        assert_same_rows(out, reference(rows, entity, full_feature_names=True), entity)

    def test_the_created_timestamp_cutoff_matches(self, store, rows):
        entity = entity_rows(rows, seed=19)
        out = store.get_historical_features(entity_df=entity, features=FEATURES,
                                            filter_by_created_timestamp=True).to_df()
        views = ref_views(rows)
        expected = point_in_time_join(
            entity, [views[n] for n in ("user_stats", "user_merchant", "global_stats")],
            created_cutoff=True)
        assert_same_rows(out, expected, entity)
        assert values(out.score) != values(reference(rows, entity).score)  # the cutoff bites

    def test_a_partial_join_key_map_on_a_two_entity_view_joins_on_both_keys(self, store, rows):
        entity = entity_rows(rows, seed=5, user_column="buyer_id")
        out = store.get_historical_features(
            entity_df=entity, features=store.get_feature_service("buyers")).to_df()
        expected = reference(rows, entity, names=("user_merchant", "user_stats"),
                             user_column="buyer_id", purchase_name="purchase")
        assert_same_rows(out, expected, entity)

    def test_on_demand_view_computes_from_the_joined_values(self, store, rows):
        entity = entity_rows(rows, seed=13)
        out = store.get_historical_features(
            entity_df=entity,
            features=["user_stats:score", "user_merchant:amount",
                      "score_times_amount:score_times_amount"]).to_df()
        expected = reference(rows, entity, names=("user_stats", "user_merchant"))
        product = (pd.to_numeric(expected.score) * pd.to_numeric(expected.amount)).round(9)
        assert values(out.score_times_amount.round(9)) == values(product)


class TestTimes:
    def test_a_row_is_kept_within_a_fractional_ttl_and_dropped_past_it(self, store, rows):
        row = rows["user_merchant"].iloc[0]
        entity = pd.DataFrame({"user_id": [row.user_id] * 2, "merchant_id": [row.merchant_id] * 2,
                               "event_timestamp": [row.ts + timedelta(seconds=1.2),
                                                   row.ts + timedelta(seconds=1.7)]})
        out = store.get_historical_features(entity_df=entity,
                                            features=["user_merchant:amount"]).to_df()
        expected = reference(rows, entity, names=("user_merchant",))
        assert values(expected.amount)[0] is not None  # the case is a real one
        assert_same_rows(out, expected, entity)

    @pytest.mark.parametrize("zone", [None, "America/New_York", "Asia/Kolkata"])
    def test_naive_and_non_utc_entity_timestamps_are_joined_as_utc_and_returned_as_given(
            self, store, rows, zone):
        from feast import FeatureStore

        raw = FeatureStore(repo_path=str(store.repo_path))
        raw.config.coerce_tz_aware = False  # so the timestamps reach the store as given
        entity = entity_rows(rows, seed=17)
        utc_times = entity.event_timestamp
        entity["event_timestamp"] = (utc_times.dt.tz_localize(None) if zone is None
                                     else utc_times.dt.tz_convert(zone))
        out = raw.get_historical_features(entity_df=entity, features=FEATURES).to_df()
        assert_same_rows(out, reference(rows, entity), entity)
        assert out.event_timestamp.dtype == entity.event_timestamp.dtype


class TestEntityRowsAsSqlOrRange:
    def test_sql_entity_rows_over_a_source_match_the_same_rows_as_a_frame(self, store, rows):
        sql = ("SELECT user_id, merchant_id, ts + INTERVAL 1 SECOND AS event_timestamp "
               "FROM user_merchant_source ORDER BY amount, user_id, merchant_id, ts")
        out = store.get_historical_features(entity_df=sql, features=FEATURES).to_df()
        by_hand = rows["user_merchant"].sort_values(["amount", "user_id", "merchant_id", "ts"])
        entity = pd.DataFrame({"user_id": by_hand.user_id, "merchant_id": by_hand.merchant_id,
                               "event_timestamp": by_hand.ts + timedelta(seconds=1)})
        expected = reference(rows, entity)
        assert out.user_id.tolist() == expected.user_id.tolist()
        for column in ["score", "visits", "amount", "total"]:
            assert values(out[column]) == values(expected[column]), column

    def test_without_entity_rows_a_single_view_returns_each_row_in_range(self, store, rows):
        start, end = T0 + timedelta(seconds=4), T0 + timedelta(seconds=12)
        features = ["user_merchant:amount", "global_stats:total"]
        out = store.get_historical_features(features=features, start_date=start,
                                            end_date=end).to_df()
        views = ref_views(rows)
        entity = range_entity_rows([views["user_merchant"], views["global_stats"]], start, end)
        expected = point_in_time_join(entity, [views["user_merchant"], views["global_stats"]])
        assert_same_rows(out, expected, entity, check_dtype=False)  # made by the store: us
        assert len(out) > 10

    def test_without_entity_rows_views_with_different_keys_are_refused(self, store):
        with pytest.raises(ValueError, match="same join keys"):
            store.get_historical_features(
                features=FEATURES, start_date=T0, end_date=T0 + timedelta(seconds=5)).to_df()

    def test_entity_less_views_alone_give_one_row_per_timestamp(self, store, rows):
        start, end = T0, T0 + timedelta(seconds=20)
        out = store.get_historical_features(features=["global_stats:total"], start_date=start,
                                            end_date=end).to_df()
        view: RefView = ref_views(rows)["global_stats"]
        entity = range_entity_rows([view], start, end)
        assert_same_rows(out, point_in_time_join(entity, [view]), entity, check_dtype=False)


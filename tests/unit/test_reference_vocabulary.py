"""The declared-vocabulary oracle on hand-worked cases."""

import math

import pandas as pd
import pytest

from tests.reference_vocabulary import brute_force_vocabulary_features

TYPES = {"create_deal": "core", "connect_mailbox": "lock_in", "login": "basic", "search": None}
D = pd.Timestamp("2026-03-31", tz="UTC")


def events(*rows):
    return pd.DataFrame([{"customer_id": "a", "timestamp": ts, "event_type": name}
                         for ts, name in rows])


def at(frame, t=D + pd.Timedelta(hours=12), unlisted="other"):
    entity = pd.DataFrame({"customer_id": ["a"], "event_timestamp": [t]})
    return brute_force_vocabulary_features(frame, TYPES, unlisted, entity).iloc[0]


class TestTheOracle:
    def test_counts_per_declared_type_and_one_other_for_every_undeclared_name(self):
        row = at(events((D - pd.Timedelta(days=1), "search"), (D - pd.Timedelta(days=2), "search"),
                        (D - pd.Timedelta(days=3), "export_pdf"),
                        (D - pd.Timedelta(days=3), "print"), (D, "search")))
        assert row.search_count_30d == 2 and row.other_count_30d == 2
        assert row.create_deal_count_30d == 0

    def test_breadth_is_the_share_of_declared_types_used_in_the_30_days_before_d(self):
        row = at(events((D - pd.Timedelta(days=1), "search"),
                        (D - pd.Timedelta(days=29), "login"),
                        (D - pd.Timedelta(days=31), "create_deal"),
                        (D - pd.Timedelta(days=2), "x")))
        assert row.adoption_score_latest == 2 / 4
        # 30 days earlier ([D - 60, D - 30)): only create_deal
        assert row.adoption_score_change_30d == pytest.approx(2 / 4 - 1 / 4)

    def test_the_mean_breadth_weighs_each_event_by_the_breadth_up_to_its_own_day(self):
        row = at(events((D - pd.Timedelta(days=10), "search"), (D - pd.Timedelta(days=5), "login"),
                        (D - pd.Timedelta(days=5), "login")))
        # the search's day: 1 type used; each login's day: search and login, 2 types
        assert row.adoption_score_mean_30d == pytest.approx((1 / 4 + 2 / 4 + 2 / 4) / 3)

    def test_role_features_count_every_type_of_the_role(self):
        row = at(events((D - pd.Timedelta(days=40, hours=-3), "connect_mailbox"),
                        (D - pd.Timedelta(days=3, hours=1), "create_deal"), (D, "create_deal")))
        assert row.lock_in_event_count_90d == 1
        assert row.days_since_last_core_event == pytest.approx(3 + 1 / 24 + 0.5)

    def test_without_events_breadth_is_zero_and_its_mean_unknown(self):
        row = at(events((D + pd.Timedelta(days=1), "search")))
        assert row.adoption_score_latest == 0 and row.adoption_score_change_30d == 0
        assert math.isnan(row.adoption_score_mean_30d)
        assert math.isnan(row.days_since_last_core_event)

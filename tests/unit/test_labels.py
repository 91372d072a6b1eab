from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from usage_features.training.labels import (
    LabelError,
    complete_rows,
    observation_rows,
    sample_customers,
    time_split,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = pd.Timedelta(days=1)


def customers(*rows):
    return pd.DataFrame(rows, columns=["customer_id", "signup_at", "churned_at"])


def at(days: float):
    return pd.Timestamp(START) + days * DAY


def rows_for(table, cutoff_days=100, horizon=30, interval=7):
    return observation_rows(table, START, at(cutoff_days), horizon_days=horizon,
                            interval_days=interval)


class TestCompleteRows:
    def test_rows_before_the_longest_window_fits_are_left_out_for_earlier_signups(self):
        rng = np.random.default_rng(7)
        history = at(60)
        table = customers(*[(f"c{i}", at(rng.uniform(0, 120)), None) for i in range(300)])
        grid = rows_for(table, cutoff_days=300)
        kept = complete_rows(grid, table, history, window_days=90)
        # brute force: a customer who signed up before the history (to the second, as the
        # scorer sees it) is observed only from 90 days after the history's start on
        signup = grid.customer_id.map(table.set_index("customer_id").signup_at.dt.floor("s"))
        expected = grid[(signup >= history) | (grid.event_timestamp >= history + 90 * DAY)]
        pd.testing.assert_frame_equal(kept, expected)
        assert 0 < len(kept) < len(grid)
        assert complete_rows(grid, table, None, window_days=90) is grid


class TestObservationRows:
    def test_a_churn_on_the_horizons_last_day_is_positive(self):
        out = rows_for(customers(("a", at(0), at(30))))
        assert out.loc[out.event_timestamp == at(0), "label"].tolist() == [1]

    def test_a_churn_just_after_the_horizon_is_negative(self):
        out = rows_for(customers(("a", at(0), at(30) + pd.Timedelta(seconds=1))))
        assert out.loc[out.event_timestamp == at(0), "label"].tolist() == [0]

    def test_no_row_is_observed_at_or_after_churn(self):
        out = rows_for(customers(("a", at(0), at(14))))
        assert out.event_timestamp.tolist() == [at(0), at(7)]
        assert out.label.tolist() == [1, 1]

    def test_rows_whose_label_window_passes_the_cutoff_are_censored(self):
        out = rows_for(customers(("a", at(0), None)), cutoff_days=50)
        assert out.event_timestamp.max() + 30 * DAY <= at(50)
        assert out.event_timestamp.tolist() == [at(0), at(7), at(14)]

    def test_a_customer_who_signs_up_after_t_is_not_observed_at_t(self):
        out = rows_for(customers(("late", at(10), None)))
        assert out.event_timestamp.min() == at(14)

    def test_a_churn_before_signup_is_a_clear_error(self):
        with pytest.raises(LabelError, match=r"churned_at is before signup_at.*'a'"):
            rows_for(customers(("a", at(10), at(5))))

    def test_a_missing_column_is_named(self):
        with pytest.raises(LabelError, match=r"missing column.*churned_at"):
            rows_for(pd.DataFrame({"customer_id": ["a"], "signup_at": [at(0)]}))

    def test_no_active_customer_is_a_clear_error(self):
        with pytest.raises(LabelError, match="no customer is active"):
            rows_for(customers(("a", at(90), None)))

    def test_a_cutoff_shorter_than_the_horizon_is_a_clear_error(self):
        with pytest.raises(LabelError, match="no observation time fits"):
            rows_for(customers(("a", at(0), None)), cutoff_days=10)


class TestTimeSplit:
    def test_validation_rows_are_all_later_than_training_rows(self):
        table = customers(*[(f"c{i}", at(0), None) for i in range(3)])
        train, validate, split = time_split(rows_for(table, cutoff_days=200), horizon_days=30)
        assert train.event_timestamp.max() < split <= validate.event_timestamp.min()

    def test_training_labels_end_before_the_validation_period(self):
        table = customers(*[(f"c{i}", at(0), None) for i in range(3)])
        train, _, split = time_split(rows_for(table, cutoff_days=200), horizon_days=30)
        assert (train.event_timestamp + 30 * DAY <= split).all()


class TestSampleCustomers:
    @pytest.fixture
    def table(self):
        rng = np.random.default_rng(3)
        ids = [f"acct-{i}" for i in range(400)]
        rows = pd.DataFrame({"customer_id": np.repeat(ids, rng.integers(0, 9, 400))})
        return pd.DataFrame({"customer_id": ids}), rows

    def test_at_most_max_rows_is_no_sample(self, table):
        customers, rows = table
        assert sample_customers(customers, rows, len(rows)) is None
        assert sample_customers(customers, rows, 0) is None  # 0: never

    @pytest.mark.parametrize("max_rows", [1, 50, 333, 1000])
    def test_whole_customers_at_least_max_rows_at_most_one_customer_more(self, table,
                                                                         max_rows):
        customers, rows = table
        chosen = sample_customers(customers, rows, max_rows)
        kept = rows[rows.customer_id.isin(chosen.customer_id)]
        per_customer = rows.customer_id.value_counts()
        last = chosen.customer_id.iloc[-1]
        assert max_rows <= len(kept) < max_rows + per_customer.get(last, 0)
        assert per_customer.get(last, 0) > 0  # the one whose rows reached max_rows
        assert chosen.customer_id.is_unique

    def test_the_same_customers_whatever_the_table_s_order(self, table):
        customers, rows = table
        once = sample_customers(customers, rows, 500)
        shuffled = sample_customers(customers.sample(frac=1, random_state=1),
                                    rows.sample(frac=1, random_state=2), 500)
        assert set(once.customer_id) == set(shuffled.customer_id)
        assert 0 < len(once) < len(customers)

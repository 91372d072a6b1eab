"""One time, one number: a request time becomes the same float epoch seconds whichever path it
takes (the online scorer's ``datetime.timestamp()``, the historical path's pandas column, the
``predict`` entity rows), so request-time features computed online and historically at the
same time are equal, not equal but for the last bit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from usage_features.features.request_time import compute_arrays, epoch_seconds
from usage_features.features.spec import (
    ADOPTION_SCORE_LATEST,
    DECAY_RATIO_7D_30D,
    LAST_EVENT_AT,
    SIGNUP_AT,
)

times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.just(UTC))


@given(st.lists(times, min_size=1, max_size=20))
def test_a_pandas_column_gives_each_time_s_own_timestamp(values):
    want = np.array([t.timestamp() for t in values])

    got = epoch_seconds(pd.Series(pd.to_datetime(values, utc=True)))

    np.testing.assert_array_equal(got, want)


@given(times, st.integers(-14 * 60, 14 * 60))
def test_an_offset_column_gives_the_same_instant_s_timestamp(value, minutes):
    local = value.astimezone(timezone(timedelta(minutes=minutes)))

    got = epoch_seconds(pd.Series([pd.Timestamp(local)]))

    assert got[0] == value.timestamp()


def test_a_time_where_pandas_total_seconds_rounds_otherwise():
    # total_seconds() of this time is 1 ulp off datetime.timestamp(): the flake this fixes
    moment = datetime(2026, 12, 3, 19, 12, 27, 811204, tzinfo=UTC)
    column = pd.Series([pd.Timestamp(moment)])
    pandas_way = (column - pd.Timestamp(0, tz="UTC")).dt.total_seconds().iloc[0]
    assert pandas_way != moment.timestamp()  # the case is real

    assert epoch_seconds(column)[0] == moment.timestamp()


def test_none_and_nat_are_nan():
    assert np.isnan(epoch_seconds(pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"))).all()
    assert np.isnan(epoch_seconds([None])).all()


@given(times)
def test_recency_online_equals_recency_historical_at_the_same_time(moment):
    last = np.array([moment.timestamp() - 3.25 * 86_400])
    inputs = {LAST_EVENT_AT: last, SIGNUP_AT: last - 86_400.0,
              ADOPTION_SCORE_LATEST: np.array([0.5]), DECAY_RATIO_7D_30D: np.array([1.0])}
    online = compute_arrays(inputs, np.array([moment.timestamp()]))
    historical = compute_arrays(inputs, epoch_seconds(pd.Series([pd.Timestamp(moment)])))

    for name, values in online.items():
        np.testing.assert_array_equal(values, historical[name], err_msg=name)

"""The reference values stored with a model are its training rows' medians."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from usage_features.training.reference_values import reference_values


def test_each_value_is_the_median_of_the_known_values_booleans_as_0_or_1():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "count": rng.poisson(5, 101).astype("int64"),
        "days": np.where(rng.random(101) < 0.3, np.nan, rng.exponential(9, 101)),
        "flag": rng.random(101) < 0.7,
        "nullable": pd.array([None if i % 4 == 0 else bool(i % 3) for i in range(101)],
                             dtype="boolean"),
    })
    expected = {}
    for name in frame.columns:
        known = [float(v) for v in frame[name].tolist()
                 if v is not None and v is not pd.NA and not math.isnan(float(v))]
        expected[name] = statistics.median(known)
    assert reference_values(frame, list(frame.columns)) == expected


def test_a_feature_null_in_every_row_has_no_reference_value():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan]})
    with pytest.raises(ValueError, match="'b'"):
        reference_values(frame, ["a", "b"])

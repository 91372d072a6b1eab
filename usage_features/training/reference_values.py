"""The reference values a model's reasons compare a customer with: the training rows' medians.

A reason says how much a feature group's values raise a customer's churn probability over the
same customer with that group's features at these values (see
:mod:`usage_features.serving.reasons`). They are computed from the training rows when the model
is fitted and saved in its metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def reference_values(rows: pd.DataFrame, features: Sequence[str]) -> dict[str, float]:
    """Each feature's median over ``rows``, nulls skipped (a boolean counts as 0 or 1).

    Refuses a feature with no value at all (there is no median to compare with).
    """
    medians = {}
    for name in features:
        values = pd.to_numeric(rows[name].astype("Float64"), errors="coerce").dropna()
        if values.empty:
            raise ValueError(f"no reference value for feature {name!r}: null in every row")
        medians[name] = float(values.median())
    return medians

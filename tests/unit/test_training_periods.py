"""The time split's refusals before any model is fitted: each is a clear error, not a
traceback from inside scikit-learn."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from usage_features.training.estimators import CALIBRATION_FOLDS
from usage_features.training.labels import LabelError
from usage_features.training.train import TrainConfig, split_periods


def weekly_rows(churners_in_training: int) -> pd.DataFrame:
    """20 customers observed weekly for 30 weeks; ``churners_in_training`` positive rows among
    the earliest times, and several in the validation period."""
    times = pd.date_range("2026-01-05", periods=30, freq="7D", tz="UTC")
    rows = pd.DataFrame([(f"c{i}", t) for t in times for i in range(20)],
                        columns=["customer_id", "event_timestamp"])
    rows["label"] = 0
    rows.loc[rows.index[:churners_in_training], "label"] = 1
    rows.loc[rows.index[-5:], "label"] = 1
    rows["event_count_30d"] = np.arange(len(rows)) % 7
    return rows


def test_a_training_period_with_fewer_churners_than_calibration_folds_is_refused():
    config = TrainConfig(repo=Path("unused"))
    with pytest.raises(LabelError, match=rf"only {CALIBRATION_FOLDS - 1} rows of churners.*"
                                         rf"at least {CALIBRATION_FOLDS} rows of each class"):
        split_periods(weekly_rows(CALIBRATION_FOLDS - 1), ["event_count_30d"], config)


def test_as_many_churners_as_calibration_folds_are_enough():
    config = TrainConfig(repo=Path("unused"))
    periods = split_periods(weekly_rows(CALIBRATION_FOLDS), ["event_count_30d"], config)
    assert periods.train.label.sum() == CALIBRATION_FOLDS

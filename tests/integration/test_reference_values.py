"""The reference values stored with a model are its training rows' medians."""

import dataclasses
import hashlib
import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from tests.factories import FEATURES, training_frame
from usage_features.training.estimators import churn_classifier
from usage_features.training.metadata import ModelMetadata
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import load_model, metadata_path, save_model
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



@pytest.fixture(scope="module")
def model() -> TrainedModel:
    frame, churned = training_frame(800)
    metadata = ModelMetadata("churn_model_v1", FEATURES, 30, 7, {},
                             reference_values=reference_values(frame, FEATURES))
    return TrainedModel(churn_classifier(FEATURES).fit(frame, churned), metadata)


class TestSavedWithTheModel:
    def test_reference_values_are_saved_and_loaded_with_the_model(self, model, tmp_path):
        loaded = load_model(save_model(model, tmp_path / "m.skops"))
        assert loaded.metadata.reference_values == model.metadata.reference_values
        assert set(loaded.metadata.reference_values) == set(model.metadata.features)

    def test_a_model_saved_before_reference_values_loads_without_them(self, model, tmp_path):
        older = dataclasses.asdict(model.metadata)
        del older["reference_values"]  # what a model saved before the field existed holds
        data = sio.dumps({"pipeline": model.pipeline, "metadata": json.dumps(older)})
        path = tmp_path / "old.skops"
        path.write_bytes(data)
        metadata_path(path).write_text(json.dumps(
            {**older, "model_file_sha256": hashlib.sha256(data).hexdigest()}))
        assert load_model(path).metadata.reference_values is None

"""Saved models: only the project's own types load, the file matches its metadata, and a
tampered or broken file is refused by name before anything in it runs."""

from __future__ import annotations

import json
import operator

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

from tests.factories import FEATURES, horizon_model, training_frame
from usage_features.training.estimators import churn_classifier, logistic_baseline
from usage_features.training.metadata import ModelMetadata
from usage_features.training.model import ModelMismatchError, TrainedModel
from usage_features.training.persistence import (
    TRUSTED_TYPES,
    ModelFileError,
    load_model,
    metadata_path,
    model_types,
    save_model,
)

FACTORIES = {"churn_classifier": churn_classifier, "logistic_baseline": logistic_baseline}


@pytest.fixture(scope="module")
def fitted() -> dict[str, TrainedModel]:
    """Each of the project's model factories, fitted as ``train`` fits them."""
    frame, churned = training_frame(1500)
    return {name: TrainedModel(factory(FEATURES).fit(frame, churned),
                               ModelMetadata("churn_model_v1", FEATURES, 30, 7, {}))
            for name, factory in FACTORIES.items()}


def payload(flag) -> str:
    """Python code that, if it ever runs, creates the file ``flag``."""
    return f"__import__('pathlib').Path({str(flag)!r}).write_text('pwned')"


def issue_attack(real: TrainedModel, flag) -> TrainedModel:
    """The issue's attack: functions in front of the real classifier evaluate a string."""
    pipeline = Pipeline([
        ("fill", FunctionTransformer(np.full_like, kw_args={"fill_value": payload(flag),
                                                             "dtype": object})),
        ("flatten", FunctionTransformer(np.ravel)),
        ("run", FunctionTransformer(max, kw_args={"key": eval})),
        ("model", real.pipeline),
    ])
    return TrainedModel(pipeline, real.metadata)


class TestTheAllowList:
    @pytest.mark.parametrize("factory", sorted(FACTORIES))
    def test_every_type_of_a_freshly_saved_project_model_is_on_the_allow_list(
            self, fitted, factory, tmp_path):
        path = save_model(fitted[factory], tmp_path / "model.skops")
        missing = model_types(path.read_bytes()) - TRUSTED_TYPES
        assert not missing, (f"{factory} now saves types not on TRUSTED_TYPES: review them, "
                             f"then add them: {sorted(missing)}")
        assert load_model(path).metadata == fitted[factory].metadata

    def test_every_allowed_type_is_one_a_project_model_is_made_of(self, fitted, tmp_path):
        used = set()
        for name, model in fitted.items():
            used |= model_types(save_model(model, tmp_path / f"{name}.skops").read_bytes())
        assert TRUSTED_TYPES - used == set(), "stale entries on TRUSTED_TYPES"

    def test_the_allow_list_names_no_code_running_builtin(self):
        assert not {"builtins.eval", "builtins.exec", "builtins.max", "builtins.getattr",
                    "builtins.__import__", "operator.methodcaller"} & TRUSTED_TYPES


class TestTamperedModels:
    def test_the_issue_attack_runs_its_code_when_types_are_trusted_by_prefix(
            self, fitted, tmp_path):
        """The attack is real: the old loader's prefix check let it through, scoring ran it."""
        flag = tmp_path / "pwned"
        path = save_model(issue_attack(fitted["churn_classifier"], flag), tmp_path / "m.skops")
        untrusted = sio.get_untrusted_types(file=path)
        assert all(t.startswith(("sklearn.", "numpy.", "builtins.", "usage_features.training."))
                   for t in untrusted)  # (the project's own steps aside)
        loaded = sio.load(path, trusted=untrusted)
        frame, _ = training_frame(3)
        # the payload ran; its result is no feature matrix (scikit-learn's message, not ours)
        with pytest.raises(ValueError):  # noqa: PT011
            loaded["pipeline"].predict_proba(frame)
        assert flag.read_text() == "pwned"

    def test_the_issue_attack_is_refused_by_name_and_runs_nothing(self, fitted, tmp_path):
        flag = tmp_path / "pwned"
        path = save_model(issue_attack(fitted["churn_classifier"], flag), tmp_path / "m.skops")
        with pytest.raises(ModelFileError) as refused:
            load_model(path)
        message = str(refused.value)
        for name in ("builtins.eval", "builtins.max", "numpy.full_like", "numpy.ravel"):
            assert name in message
        assert "loading could run code" in message and "retrain" in message
        assert not flag.exists()

    @pytest.mark.parametrize(("extra", "name"), [
        (eval, "builtins.eval"),
        (operator.methodcaller("__call__"), "operator.methodcaller"),
        (np.full_like, "numpy.full_like"),
    ])
    def test_a_model_with_any_function_added_is_refused_by_that_name(
            self, fitted, tmp_path, extra, name):
        real = fitted["churn_classifier"]
        tampered = Pipeline([("extra", FunctionTransformer(extra)), ("model", real.pipeline)])
        path = save_model(TrainedModel(tampered, real.metadata), tmp_path / "m.skops")
        with pytest.raises(ModelFileError, match=f"types no model of this project .*{name}"):
            load_model(path)

    def test_a_model_with_a_scikit_learn_type_the_project_never_saves_is_refused(
            self, fitted, tmp_path):
        """skops trusts any scikit-learn estimator; this loader only the project's own."""
        real = fitted["churn_classifier"]
        tampered = Pipeline([("scale", MinMaxScaler()), ("model", real.pipeline)])
        path = save_model(TrainedModel(tampered, real.metadata), tmp_path / "m.skops")
        assert "sklearn.preprocessing._data.MinMaxScaler" not in sio.get_untrusted_types(
            file=path)
        with pytest.raises(ModelFileError, match="MinMaxScaler"):
            load_model(path)


class TestTheFileMatchesItsMetadata:
    def test_save_records_the_model_files_sha256_in_its_metadata(self, fitted, tmp_path):
        import hashlib

        path = save_model(fitted["logistic_baseline"], tmp_path / "m.skops")
        recorded = json.loads(metadata_path(path).read_text())["model_file_sha256"]
        assert recorded == hashlib.sha256(path.read_bytes()).hexdigest()

    def test_a_model_file_swapped_for_another_is_refused(self, fitted, tmp_path):
        path = save_model(fitted["churn_classifier"], tmp_path / "m.skops")
        other = save_model(fitted["logistic_baseline"], tmp_path / "other.skops")
        path.write_bytes(other.read_bytes())
        with pytest.raises(ModelFileError, match=r"does not match its metadata.*retrain"):
            load_model(path)

    def test_a_truncated_model_file_is_refused_as_not_matching(self, fitted, tmp_path):
        path = save_model(fitted["churn_classifier"], tmp_path / "m.skops")
        path.write_bytes(path.read_bytes()[:1000])
        with pytest.raises(ModelFileError, match="changed, corrupted or truncated"):
            load_model(path)

    def test_a_corrupt_file_whose_hash_was_recorded_is_a_clear_error(self, fitted, tmp_path):
        path = save_model(fitted["churn_classifier"], tmp_path / "m.skops")
        _rewrite_with_hash(path, path.read_bytes()[:1000])
        with pytest.raises(ModelFileError, match="not a readable model file"):
            load_model(path)

    def test_a_model_without_metadata_is_refused(self, fitted, tmp_path):
        path = save_model(fitted["churn_classifier"], tmp_path / "m.skops")
        metadata_path(path).unlink()
        with pytest.raises(ModelFileError, match="no metadata beside it"):
            load_model(path)

    def test_a_model_whose_metadata_records_no_hash_is_refused(self, fitted, tmp_path):
        path = save_model(fitted["churn_classifier"], tmp_path / "m.skops")
        meta = json.loads(metadata_path(path).read_text())
        del meta["model_file_sha256"]
        metadata_path(path).write_text(json.dumps(meta))
        with pytest.raises(ModelFileError, match="records no SHA-256"):
            load_model(path)

    def test_a_skops_file_that_is_not_a_project_model_is_a_clear_error(self, tmp_path):
        path = tmp_path / "m.skops"
        _rewrite_with_hash(path, sio.dumps({"pipeline": [1, 2]}))
        with pytest.raises(ModelFileError, match="not a model saved by usage-features"):
            load_model(path)

    def test_model_file_errors_are_value_errors_the_commands_report(self):
        assert issubclass(ModelFileError, ValueError)
        assert not issubclass(ModelFileError, ModelMismatchError)


def _rewrite_with_hash(path, data: bytes) -> None:
    """Write ``data`` as the model at ``path`` with metadata that records its hash."""
    import hashlib

    path.write_bytes(data)
    meta = {"model_file_sha256": hashlib.sha256(data).hexdigest()}
    metadata_path(path).write_text(json.dumps(meta))


class TestHorizonsInTheModelFile:
    @pytest.fixture(scope="class")
    def with_horizons(self, fitted):
        frame, churned = training_frame(1500)
        real = fitted["churn_classifier"]
        return frame, TrainedModel(real.pipeline, real.metadata,
                                   horizon_model(frame, churned, classified=(90,)))

    def test_the_horizons_add_no_type_to_the_allow_list(self, with_horizons, tmp_path):
        _, model = with_horizons
        path = save_model(model, tmp_path / "model.skops")
        assert not model_types(path.read_bytes()) - TRUSTED_TYPES

    def test_the_horizons_round_trip_with_identical_scores(self, with_horizons, tmp_path):
        frame, model = with_horizons
        loaded = load_model(save_model(model, tmp_path / "model.skops"))
        assert loaded.horizon_days == (60, 90) and loaded.horizons.shipped(90) == "classifier"
        pd.testing.assert_frame_equal(loaded.predict_frame(frame), model.predict_frame(frame),
                                      check_exact=True)
        matrix = frame.to_numpy(dtype=float)[:50]
        base = model.predict_matrix(matrix)
        for got, expected in zip(loaded.predict_horizons(matrix, base),
                                 model.predict_horizons(matrix, base)):
            np.testing.assert_array_equal(got, expected)

    def test_a_model_saved_before_horizons_loads_and_scores_without_them(self, fitted,
                                                                         tmp_path):
        frame, _ = training_frame(20)
        old = fitted["churn_classifier"]
        loaded = load_model(save_model(old, tmp_path / "old.skops"))
        assert loaded.horizons is None and loaded.horizon_days == ()
        assert loaded.predict_horizons(frame.to_numpy(dtype=float), np.zeros(20)) is None
        assert list(loaded.predict_frame(frame).columns) == ["churn_probability"]

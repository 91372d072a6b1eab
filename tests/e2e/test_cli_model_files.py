"""The commands that load a model refuse a tampered or broken one with a clear message."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.factories import FEATURES, training_frame
from tests.integration.test_model_persistence import issue_attack
from usage_features.cli import app
from usage_features.training.estimators import churn_classifier
from usage_features.training.metadata import ModelMetadata
from usage_features.training.model import TrainedModel
from usage_features.training.persistence import metadata_path, save_model

runner = CliRunner()


@pytest.fixture(scope="module")
def real_model() -> TrainedModel:
    frame, churned = training_frame(800)
    return TrainedModel(churn_classifier(FEATURES).fit(frame, churned),
                        ModelMetadata("churn_model_v1", FEATURES, 30, 7, {}))


def commands(repo, model, tmp_path) -> dict[str, list[str]]:
    """Each command that loads a model, pointed at ``model``."""
    entities = tmp_path / "entities.csv"
    pd.DataFrame({"customer_id": ["a"], "event_timestamp": ["2025-06-01T00:00:00Z"]}).to_csv(
        entities, index=False)
    common = ["--repo", str(repo), "--model", str(model)]
    return {"score": ["score", "a", *common],
            "predict": ["predict", "--entities", str(entities), "--out",
                        str(tmp_path / "out.csv"), *common],
            "serve": ["serve", "--port", "1", *common]}


@pytest.mark.parametrize("command", ["score", "predict", "serve"])
def test_a_tampered_model_is_refused_by_name_and_runs_nothing(real_model, tmp_path, command):
    flag = tmp_path / "pwned"
    model = save_model(issue_attack(real_model, flag), tmp_path / "churn.skops")
    result = runner.invoke(app, commands(tmp_path, model, tmp_path)[command])
    assert result.exit_code == 2, result.output
    assert "holds types no model of this project" in result.output
    assert "builtins.eval" in result.output and "Traceback" not in result.output
    assert not flag.exists() and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("command", ["score", "predict", "serve"])
def test_a_model_that_does_not_match_its_metadata_is_a_clear_error(real_model, tmp_path,
                                                                   command):
    model = save_model(real_model, tmp_path / "churn.skops")
    model.write_bytes(model.read_bytes()[:-100])
    result = runner.invoke(app, commands(tmp_path, model, tmp_path)[command])
    assert result.exit_code == 2, result.output
    assert "does not match its metadata" in result.output and "retrain" in result.output


def test_a_model_without_metadata_is_a_clear_error(real_model, tmp_path):
    model = save_model(real_model, tmp_path / "churn.skops")
    metadata_path(model).unlink()
    result = runner.invoke(app, commands(tmp_path, model, tmp_path)["score"])
    assert result.exit_code == 2 and "no metadata beside it" in result.output

"""The README's main command, end to end (slow: run with `pytest -m slow` or `make test-all`)."""

import pytest
from typer.testing import CliRunner

from usage_features.cli import app


@pytest.mark.slow
def test_the_demo_runs_every_step_and_scores_customers(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path / "demo"),
                                      "--customers", "400"])
    assert result.exit_code == 0, result.output
    for step in ("simulate", "ingest", "build", "train", "materialize", "score", "refresh",
                 "monitor"):
        assert step in result.stdout
    assert "unknown customer" in result.stdout
    assert (tmp_path / "demo" / "feature_repo" / "data" / "models" / "churn_model_v1.skops").exists()

"""A feature repo whose definitions were made by another version of the package: `build` says
what to do, and the repo's data is kept."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo, populate
from tests.factories import churn_dataset
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.features.store import DefinitionsError, apply_definitions

# What churn_features.py imported before the Feast adapter became one package.
EARLIER = ("from usage_features.adapters.feast_registry import repoint_copied_registries\n"
           "from usage_features.features import describe, feast_schema, table_source\n")


@pytest.fixture
def outdated(tmp_path):
    repo = copy_feature_repo(tmp_path / "feature_repo")
    populate(repo, *churn_dataset(seed=3, customers=5))
    definitions = repo / "churn_features.py"
    definitions.write_text(EARLIER + definitions.read_text())
    return repo


def test_apply_names_the_cause_and_the_fix(outdated):
    with pytest.raises(DefinitionsError, match=r"another version.*copy churn_features\.py"):
        apply_definitions(outdated)


def test_build_exits_2_with_the_fix_and_keeps_the_data(outdated):
    log = sorted(RepoPaths(outdated).events.rglob("*.parquet"))
    result = CliRunner().invoke(app, ["build", "--repo", str(outdated)])
    assert result.exit_code == 2, result.output
    assert "feast_registry" in result.output and "copy churn_features.py" in result.output
    assert sorted(RepoPaths(outdated).events.rglob("*.parquet")) == log != []

"""`build` runs `feast apply` only when what it registers changed (a digest of the contents,
not file times), or when the registry is missing."""

from __future__ import annotations

import os

import pytest

from tests.conftest import copy_feature_repo, populate
from tests.factories import churn_dataset
from usage_features.config import RepoPaths
from usage_features.service_layer import build as build_module
from usage_features.service_layer.build import build, definitions_digest


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_feature_repo(tmp_path_factory.mktemp("apply") / "feature_repo")
    populate(repo, *churn_dataset(seed=4, customers=6))
    return repo


@pytest.fixture
def applies(monkeypatch):
    calls = []
    real = build_module.apply_definitions
    monkeypatch.setattr(build_module, "apply_definitions",
                        lambda *args: calls.append(args) or real(*args))
    return calls


def test_an_unchanged_repo_is_applied_once(repo, applies):
    first, second = build(RepoPaths(repo)), build(RepoPaths(repo))
    assert first.definitions_applied and not second.definitions_applied
    assert len(applies) == 1


def test_a_touched_but_unchanged_file_is_not_applied_again(repo, applies):
    build(RepoPaths(repo))
    definitions = repo / "churn_features.py"
    os.utime(definitions, (1, 1))  # another time, the same content
    assert not build(RepoPaths(repo)).definitions_applied and len(applies) <= 1


def test_the_digest_follows_the_vocabulary(tmp_path):
    repo = copy_feature_repo(tmp_path / "feature_repo")
    default = definitions_digest(RepoPaths(repo))
    (repo / "usage_features.yaml").write_text(
        "events:\n  types:\n    login: {role: basic}\n    export_report: {role: core}\n")
    assert definitions_digest(RepoPaths(repo)) != default


def test_a_changed_definition_file_is_applied(repo, applies):
    build(RepoPaths(repo))
    before = definitions_digest(RepoPaths(repo))
    definitions = repo / "churn_features.py"
    definitions.write_text(definitions.read_text() + "\n# an edit\n")
    assert definitions_digest(RepoPaths(repo)) != before
    assert build(RepoPaths(repo)).definitions_applied


def test_a_missing_registry_is_applied_again(repo, applies):
    build(RepoPaths(repo))
    (repo / "data" / "registry.db").unlink()
    assert build(RepoPaths(repo)).definitions_applied
    assert (repo / "data" / "registry.db").exists()

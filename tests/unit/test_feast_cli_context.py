"""``feast apply`` in process: what it needs of the process is set for it, then restored."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from usage_features.features.store import as_under_the_feast_cli


def process_state() -> tuple:
    return (list(sys.path), os.getcwd(), os.environ.get("FEAST_FS_YAML_FILE_PATH"),
            logging.getLogger("feast").level)


class TestAsUnderTheFeastCli:
    def test_inside_the_repo_is_importable_and_its_config_named(self, tmp_path):
        with as_under_the_feast_cli(tmp_path, "feature_store.redis.yaml"):
            assert sys.path[0] == str(tmp_path)
            assert os.environ["FEAST_FS_YAML_FILE_PATH"] == str(
                tmp_path / "feature_store.redis.yaml")
            assert logging.getLogger("feast").level == logging.ERROR

    def test_a_module_of_the_same_name_from_another_repo_is_forgotten(self, tmp_path,
                                                                      monkeypatch):
        (tmp_path / "definitions.py").write_text("")
        monkeypatch.setitem(sys.modules, "definitions", object())
        with as_under_the_feast_cli(tmp_path, "feature_store.yaml"):
            assert "definitions" not in sys.modules

    @pytest.mark.parametrize("previous", [None, "elsewhere/feature_store.yaml"])
    def test_everything_is_restored_after_a_change_of_directory_and_an_error(
            self, tmp_path, monkeypatch, previous):
        if previous is None:
            monkeypatch.delenv("FEAST_FS_YAML_FILE_PATH", raising=False)
        else:
            monkeypatch.setenv("FEAST_FS_YAML_FILE_PATH", previous)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "repo").mkdir()
        before = process_state()
        with (pytest.raises(RuntimeError, match="apply failed"),  # noqa: PT012 - a chdir, then
              as_under_the_feast_cli(tmp_path / "repo", "feature_store.yaml")):  # the failure
            os.chdir(tmp_path / "repo")  # as apply_total does
            raise RuntimeError("apply failed")
        assert process_state() == before

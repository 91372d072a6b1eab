"""The ``usage-features`` console script and the package's modules, read as Python reads them."""

from __future__ import annotations

import ast
import os
from collections import Counter
from pathlib import Path

import pytest

import usage_features.cli as cli

PACKAGE = Path(cli.__file__).resolve().parents[1]


def test_the_console_script_sets_a_passive_openmp_wait_policy_before_the_app_runs(
        monkeypatch):
    seen = {}
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(cli, "app", lambda prog_name: seen.update(
        prog=prog_name, policy=os.environ.get("OMP_WAIT_POLICY")))
    cli.main()
    assert seen == {"prog": "usage-features", "policy": "PASSIVE"}


def top_level_definitions(source: str) -> list[str]:
    return [node.name for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_defines_a_function_or_class_twice(path):
    """A second ``def main`` silently replaces the first (as it once did in cli/)."""
    counts = Counter(top_level_definitions(path.read_text()))
    assert [name for name, n in counts.items() if n > 1] == []


def test_a_second_definition_is_found():
    assert top_level_definitions("def main(): pass\nclass A: pass\ndef main(): pass\n") == [
        "main", "A", "main"]


def test_an_error_message_is_printed_as_plain_text(capsys):
    error = cli.fail("no file at /data/[2026]/events.csv: install usage-features[serve]")
    assert error.exit_code == 2
    assert "/data/[2026]/events.csv: install usage-features[serve]" in capsys.readouterr().err

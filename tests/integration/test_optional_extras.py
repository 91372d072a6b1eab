"""The core install works without the optional extras; a command that needs one names it.

Each check runs in a fresh interpreter whose ``sys.meta_path`` makes the extras' modules
unimportable, as on an install without them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from usage_features.extras import EXTRAS, MissingExtraError, extra_imports, require

ROOT = Path(__file__).resolve().parents[2]

BLOCKER = """
import sys

BLOCKED = set(sys.argv[1].split(","))


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Blocker())
sys.argv = sys.argv[:1] + sys.argv[2:]
"""

#: Feast itself imports FastAPI and pydantic, so the core's modules that import Feast can only
#: do without the other extras' modules.
NOT_NEEDED_BY_FEAST = ("psycopg", "pyspark", "matplotlib", "redis")
#: The command line does without every extra's module but pydantic, which Typer's own option
#: parsing imports (a dependency of a core dependency).
NOT_NEEDED_BY_THE_CLI = (
    *(m for modules in EXTRAS.values() for m in modules if m != "pydantic"), "redis")


def run_without(blocked, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-c", BLOCKER + code, ",".join(blocked), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


class TestWithoutTheExtras:
    def test_the_command_line_imports_and_prints_its_help(self):
        result = run_without(NOT_NEEDED_BY_THE_CLI, "from usage_features.cli import main; main()",
                             "--help")
        assert result.returncode == 0, result.stderr
        for command in ("ingest", "build", "train", "score", "serve"):
            assert command in result.stdout

    def test_the_core_commands_modules_import(self):
        code = """
import json
import usage_features.cli
import usage_features.features.build
import usage_features.ingestion
import usage_features.service_layer.refresh
import usage_features.serving.freshness
import usage_features.serving.scorer
import usage_features.training.report
import usage_features.training.train
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)))
"""
        result = run_without(NOT_NEEDED_BY_FEAST, code)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == []

    def test_serve_names_the_serve_extra(self, tmp_path):
        result = run_without(NOT_NEEDED_BY_THE_CLI, "from usage_features.cli import main; main()",
                             "serve", "--repo", str(tmp_path))
        assert result.returncode == 2
        assert "usage-features[serve]" in result.stderr
        assert "Traceback" not in result.stderr

    def test_the_http_module_names_the_serve_extra_when_imported(self):
        code = """
try:
    import usage_features.http.app
except ImportError as exc:
    print(type(exc).__name__, exc)
"""
        result = run_without(("fastapi",), code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("MissingExtraError")
        assert "usage-features[serve]" in result.stdout

    @pytest.mark.parametrize(("module", "extra"), [
        ("usage_features.adapters.postgres", "postgres"),
        ("usage_features.adapters.postgres_scores", "postgres"),
    ])
    def test_a_module_of_an_extra_names_it_when_imported(self, module, extra):
        code = f"""
try:
    import {module}
except ImportError as exc:
    print(type(exc).__name__, exc)
"""
        result = run_without(NOT_NEEDED_BY_FEAST, code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("MissingExtraError")
        assert f"usage-features[{extra}]" in result.stdout


class TestTheHelpers:
    def test_require_passes_when_the_extra_is_installed(self):
        require("report", "a test")

    def test_require_names_the_extra_and_the_module(self, monkeypatch):
        monkeypatch.setitem(EXTRAS, "report", ("matplotlib", "no_such_module_for_the_test"))
        with pytest.raises(MissingExtraError, match=r"install usage-features\[report\]") as info:
            require("report", "a test")
        assert info.value.name == "no_such_module_for_the_test"
        assert info.value.extra == "report"

    def test_extra_imports_converts_only_the_extra_s_modules(self):
        with pytest.raises(MissingExtraError, match=r"usage-features\[spark\]"), \
                extra_imports("spark", "a test"):
            raise ModuleNotFoundError("No module named 'pyspark.sql'", name="pyspark.sql")
        with pytest.raises(ModuleNotFoundError) as info, extra_imports("spark", "a test"):
            raise ModuleNotFoundError("No module named 'other'", name="other")
        assert not isinstance(info.value, MissingExtraError)

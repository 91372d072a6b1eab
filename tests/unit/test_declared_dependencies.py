"""pyproject.toml declares what the package imports, and each extra is the one named in errors.

Every top-level module that ``usage_features/`` imports (at the top or inside a function) and
that is not in the standard library must come from a distribution that ``pyproject.toml``
declares, in the core dependencies or in an extra (not ``dev``). The modules that
:mod:`usage_features.extras` assigns to an extra must come from that extra, and not from the
core dependencies.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

from usage_features.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "usage_features"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """``"uvicorn[standard]>=0.30,<0.56"`` -> ``"uvicorn"``."""
    return normalized(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def declared_requirements(group: str) -> list[str]:
    """The requirements of the core dependencies (``"core"``) or of an extra."""
    return (PROJECT["dependencies"] if group == "core"
            else PROJECT["optional-dependencies"][group])


def declared(*groups: str) -> set[str]:
    """The distributions of the core dependencies (``"core"``) and the extras named."""
    return {requirement_name(r) for group in groups for r in declared_requirements(group)}


def imported_top_level_modules() -> dict[str, list[str]]:
    """Each third-party top-level module the package imports -> the files that import it."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top in sys.stdlib_module_names or top in ("__future__", "usage_features"):
                    continue
                found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def distributions(module: str) -> set[str]:
    """The installed distributions that provide top-level ``module``."""
    return {normalized(d) for d in importlib.metadata.packages_distributions().get(module, [])}


RUNTIME_GROUPS = ("core", *(g for g in PROJECT["optional-dependencies"] if g != "dev"))


class TestEveryImportIsDeclared:
    def test_the_scan_finds_the_package_s_imports(self):
        modules = imported_top_level_modules()
        # one of the core dependencies, one of an extra, one imported inside a function only
        assert {"duckdb", "fastapi", "pyspark"} <= set(modules)

    @pytest.mark.parametrize("module", sorted(imported_top_level_modules()))
    def test_an_imported_module_comes_from_a_declared_distribution(self, module):
        providers = distributions(module)
        assert providers, f"{module} is imported but not installed: which distribution is it?"
        assert providers & declared(*RUNTIME_GROUPS), (
            f"{module} (from {sorted(providers)}) is imported by "
            f"{imported_top_level_modules()[module]} but pyproject.toml does not declare it")


class TestTheExtras:
    def test_every_extra_of_the_error_messages_is_in_pyproject(self):
        assert set(EXTRAS) <= set(PROJECT["optional-dependencies"])

    @pytest.mark.parametrize("extra", sorted(EXTRAS))
    def test_an_extra_s_modules_come_from_that_extra_not_the_core(self, extra):
        for module in EXTRAS[extra]:
            providers = distributions(module)
            assert providers & declared(extra), f"{module} is not in the {extra} extra"
            assert not providers & declared("core"), f"{module} is a core dependency"

    def test_a_bounded_dependency_has_both_bounds(self):
        # the libraries whose internals the code relies on
        wanted = {"scikit-learn", "duckdb", "uvicorn", "skops"}
        requirements = {requirement_name(r): r for group in RUNTIME_GROUPS
                        for r in declared_requirements(group)}
        for name in wanted:
            assert ">=" in requirements[name] and "<" in requirements[name].replace("<=", ""), (
                requirements[name])
        assert "==" in requirements["feast"]

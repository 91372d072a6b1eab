"""The dependency rule, read from the source: the domain imports only the standard library, and
adapters import the domain, each other and libraries, never the layers that use them."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "usage_features"
#: The layers built on the adapters: an adapter importing one of them makes a cycle.
OUTER_LAYERS = ("cli", "demo", "features", "ingestion", "monitoring", "refresh", "serving",
                "simulation", "training")


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, at the top or inside a function (relative ones resolved
    against the package)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.append(f"{base}.{node.module}" if node.module else base)
            else:
                found.append(node.module)
    return found


def sources(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def is_outer(module: str) -> bool:
    return any(module == f"usage_features.{layer}" or module.startswith(f"usage_features.{layer}.")
               for layer in OUTER_LAYERS)


class TestTheDependencyRule:
    @pytest.mark.parametrize("path", sources("adapters"), ids=lambda p: p.name)
    def test_an_adapter_imports_no_layer_built_on_the_adapters(self, path):
        assert [m for m in imported_modules(path) if is_outer(m)] == []

    @pytest.mark.parametrize("path", sources("domain"), ids=lambda p: p.name)
    def test_the_domain_imports_only_the_standard_library_and_itself(self, path):
        allowed = set(sys.stdlib_module_names) | {"__future__"}
        assert [m for m in imported_modules(path)
                if m.split(".")[0] not in allowed
                and not m.startswith("usage_features.domain")] == []


class TestTheRuleItself:
    def test_an_import_inside_a_function_is_found(self, tmp_path):
        module = PACKAGE / "adapters" / "feast" / "online.py"
        assert "feast.infra.online_stores.sqlite" in imported_modules(module)

    def test_an_outer_layer_is_told_from_a_module_that_only_starts_alike(self):
        assert is_outer("usage_features.ingestion.ingest")
        assert is_outer("usage_features.refresh")
        assert not is_outer("usage_features.refreshments")
        assert not is_outer("usage_features.domain.entities")

    def test_the_layers_named_are_the_package_s_own(self):
        present = {p.stem for p in PACKAGE.iterdir() if not p.name.startswith("_")}
        assert set(OUTER_LAYERS) <= present

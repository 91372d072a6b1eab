"""The dependency rule, read from the source.

- The domain imports only the standard library; adapters import the domain, each other and
  libraries, never the layers that use them; the outer layers import inward only.
- The pure core (the domain, the feature spec, its SQL compiler, the request-time features)
  imports only the standard library, NumPy/pandas/pyarrow, the domain and itself: never an
  engine, Feast or an adapter.
- One Feast adapter (``adapters/feast/``): only it, the offline-store plugin Feast loads by name
  (``adapters/feast_offline_store/``) and the feature repo's declarative definitions (Feast's
  public names only) import Feast, and only it changes the process's state for Feast.
- A feature's name is written only in the spec: everything else takes it from there.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import pytest

from usage_features.domain.vocabulary import EventType, parse_vocabulary
from usage_features.features.spec import PROFILE, feature_spec
from usage_features.schema import CUSTOMER_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "usage_features"
#: The layers built on the adapters: an adapter importing one of them makes a cycle.
OUTER_LAYERS = ("cli", "features", "http", "ingestion", "monitoring", "service_layer", "serving",
                "simulation", "training")
#: The outer layers from the inside out: a layer imports none of a later rank (the entry points
#: come last: nothing inward imports them). ``features`` and ``ingestion`` share a rank.
OUTWARD = (("features", "ingestion", "simulation"), ("training",), ("serving",), ("monitoring",),
           ("service_layer",), ("cli", "http"))
STANDARD_LIBRARY = set(sys.stdlib_module_names) | {"__future__"}

#: The pure core: no engine, no Feast, no adapter.
PURE_CORE = ("domain", "features/__init__.py", "features/spec.py", "features/sql.py",
             "features/request_time.py")
#: What the pure core may import beside the standard library: the libraries it computes with,
#: the domain, and its own modules (``usage_features.features`` itself imports nothing).
CORE_LIBRARIES = ("numpy", "pandas", "pyarrow")
CORE_MODULES = ("usage_features.domain", "usage_features.features.spec",
                "usage_features.features.sql", "usage_features.features.request_time")

#: The one Feast adapter: Feast's private API and the process-state changes Feast needs.
FEAST_ADAPTER = PACKAGE / "adapters" / "feast"
#: The offline store Feast loads by the name in ``feature_store*.yaml``: a Feast plugin, built on
#: Feast's offline-store interface.
FEAST_PLUGIN = PACKAGE / "adapters" / "feast_offline_store"
#: Modules outside those two that may import a public Feast name, and why (none today).
FEAST_ALLOWED: dict[str, str] = {}
#: Process-state changes outside the Feast adapter, and why.
STATE_CHANGES_ALLOWED = {
    # the console script sets what its process needs where it starts (not for Feast):
    # scikit-learn's OpenMP threads wait passively (see usage_features.cli.main)
    ("cli/__init__.py", "os.environ.setdefault"),
}


def imported_modules(path: Path, source: str | None = None) -> list[str]:
    """Every module ``path`` imports, at the top or inside a function (relative ones resolved
    against the package); for ``from M import N`` both ``M`` and ``M.N`` (N may be a module)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            found.append(module)
            found += [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return found


def sources(layer: str) -> list[Path]:
    """The modules of a layer (a package, a module, or one file: ``features/spec.py``)."""
    target = PACKAGE / layer
    if target.suffix == ".py":
        return [target]
    if not target.exists():
        return [target.with_suffix(".py")]
    return sorted(target.rglob("*.py"))


def name_of(path: Path) -> str:
    return str(path.relative_to(ROOT))


def is_outer(module: str) -> bool:
    return any(module == f"usage_features.{layer}" or module.startswith(f"usage_features.{layer}.")
               for layer in OUTER_LAYERS)


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(f"{prefix}.")


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "usage_features" and len(parts) > 1 else None


def not_core(modules: list[str]) -> list[str]:
    """The imports the pure core may not make."""
    return [m for m in modules
            if m.split(".")[0] not in STANDARD_LIBRARY
            and not any(within(m, allowed) for allowed in (*CORE_LIBRARIES, *CORE_MODULES))
            and m != "usage_features.features"]


def feast_imports(modules: list[str]) -> list[str]:
    return [m for m in modules if within(m, "feast")]


def is_public_feast(module: str) -> bool:
    """Feast's public API as its documentation imports it, all the feature repo's definitions
    use: the top-level classes (``from feast import Entity``), the field types (``from
    feast.types import Float64``) and the on-demand view decorator (``from
    feast.on_demand_feature_view import on_demand_feature_view``). Anything else (a module
    under ``feast``: ``feast.repo_operations``, ``feast.infra...``, ``feast.protos...``) is
    Feast's inside, for the adapter alone."""
    parts = module.split(".")
    if parts[:2] == ["feast", "types"]:
        return len(parts) <= 3
    if module in ("feast.on_demand_feature_view",
                  "feast.on_demand_feature_view.on_demand_feature_view"):
        return True
    return module == "feast" or (len(parts) == 2 and parts[1][:1].isupper())


def dotted(node: ast.AST) -> str:
    """``os.environ.pop`` for that attribute chain ("" for anything else)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    if isinstance(node, ast.Call):  # logging.getLogger("feast").setLevel
        return ".".join([dotted(node.func) + "()", *reversed(parts)])
    return ""


_ENVIRON = re.compile(r"^(os\.)?environ(\.(pop|popitem|update|setdefault|clear|__setitem__"
                      r"|__delitem__))?$")


def state_changes(source: str) -> list[str]:
    """What ``source`` does to the process's environment, ``sys.path``, working directory or
    loggers' levels (each named as written: ``os.environ[...]``, ``sys.path.insert``...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript) and _ENVIRON.match(dotted(target.value)):
                found.append(f"{dotted(target.value)}[...]")
            elif dotted(target) in ("sys.path", "os.environ"):
                found.append(dotted(target))
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            if (name in ("os.chdir", "chdir", "os.putenv", "os.unsetenv")
                    or name.startswith("sys.path.") or name.endswith(".setLevel")
                    or (_ENVIRON.match(name) and "." in name.removeprefix("os."))):
                found.append(name)
    return found


def _documentation(tree: ast.AST) -> set[int]:
    """The string statements of ``tree``: docstrings, and strings documenting an attribute."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)}


def spelled_names(source: str, names: set[str]) -> list[str]:
    """Each feature of ``names`` that ``source`` spells: in a string (as a whole word: a
    ``view:feature`` ref, a format field, SQL, a message), f-strings' text included, or as an
    attribute (``frame.tenure_days``); documentation strings left out."""
    tree = ast.parse(source)
    documentation = _documentation(tree)
    pattern = re.compile(r"(?<![A-Za-z0-9_])("
                         + "|".join(sorted(map(re.escape, names), key=len, reverse=True))
                         + r")(?![A-Za-z0-9_])")
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in documentation):
            found += [f"{node.lineno}: {m!r} in a string" for m in pattern.findall(node.value)]
        elif isinstance(node, ast.Attribute) and node.attr in names:
            found.append(f"{node.lineno}: .{node.attr}")
    return found


def the_declared_roles_spec():
    """A declared vocabulary with every role, undeclared events and breadth: the spec's names
    for a declared vocabulary (``days_since_last_core_event``, ``lock_in_event_count_90d``...)."""
    roles = {EventType.MONITORING_RUN: "core", EventType.INTEGRATION_CONNECT: "lock_in",
             EventType.LOGIN: "basic"}
    return feature_spec(parse_vocabulary(
        {t.value: ({"role": roles[t]} if t in roles else {}) for t in EventType},
        "other", "breadth"))


#: The customers table's columns the spec serves as (stored) features: ingestion, the labels and
#: the simulator name them as the table's columns (``usage_features.schema.CUSTOMER_SCHEMA``).
CUSTOMER_COLUMNS = {f.name for f in PROFILE}


def feature_names() -> set[str]:
    """Every feature name of the default spec and of a declared one: stored, internal, served,
    request-time (their inputs included), without the customers table's columns."""
    names = set()
    for spec in (feature_spec(), the_declared_roles_spec()):
        names |= {f.name for f in (*spec.windowed, *spec.request_time)}
    return names - CUSTOMER_COLUMNS


#: The one module that spells feature names.
SPEC = PACKAGE / "features" / "spec.py"


def every_module() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def is_under(path: Path, directory: Path) -> bool:
    return path.is_relative_to(directory)


class TestTheDependencyRule:
    @pytest.mark.parametrize("path", sources("adapters"), ids=name_of)
    def test_an_adapter_imports_no_layer_built_on_the_adapters(self, path):
        assert [m for m in imported_modules(path) if is_outer(m)] == []

    @pytest.mark.parametrize("path", sources("domain"), ids=name_of)
    def test_the_domain_imports_only_the_standard_library_and_itself(self, path):
        assert [m for m in imported_modules(path)
                if m.split(".")[0] not in STANDARD_LIBRARY
                and not m.startswith("usage_features.domain")] == []

    @pytest.mark.parametrize("rank", range(len(OUTWARD) - 1),
                             ids=lambda r: "+".join(OUTWARD[r]))
    def test_an_outer_layer_imports_none_further_out(self, rank):
        further = {layer for layers in OUTWARD[rank + 1:] for layer in layers}
        found = [(name_of(path), m) for layer in OUTWARD[rank] for path in sources(layer)
                 for m in imported_modules(path) if layer_of(m) in further]
        assert found == []


class TestThePureCore:
    @pytest.mark.parametrize("path", [p for layer in PURE_CORE for p in sources(layer)],
                             ids=name_of)
    def test_it_imports_only_the_standard_library_its_libraries_the_domain_and_itself(
            self, path):
        assert not_core(imported_modules(path)) == []


class TestOneFeastAdapter:
    @pytest.mark.parametrize("path", every_module(), ids=name_of)
    def test_only_the_adapter_and_the_offline_store_plugin_import_feast(self, path):
        if is_under(path, FEAST_ADAPTER) or is_under(path, FEAST_PLUGIN):
            return
        modules = feast_imports(imported_modules(path))
        if name_of(path) in FEAST_ALLOWED:
            assert [m for m in modules if not is_public_feast(m)] == []
        else:
            assert modules == []

    @pytest.mark.parametrize("path", sorted((ROOT / "feature_repo").glob("*.py")), ids=name_of)
    def test_the_feature_repo_uses_only_feast_s_public_names(self, path):
        assert [m for m in feast_imports(imported_modules(path)) if not is_public_feast(m)] == []

    @pytest.mark.parametrize("path", [*every_module(),
                                      *sorted((ROOT / "feature_repo").glob("*.py"))],
                             ids=name_of)
    def test_only_the_adapter_changes_the_process_s_state(self, path):
        if is_under(path, FEAST_ADAPTER):
            return
        relative = str(path.relative_to(PACKAGE)) if is_under(path, PACKAGE) else name_of(path)
        assert [c for c in state_changes(path.read_text())
                if (relative, c) not in STATE_CHANGES_ALLOWED] == []

    def test_every_directory_of_modules_is_a_package(self):
        # a directory without __init__.py is a namespace package: not walked by the import
        # test, not found by setuptools' package discovery
        assert [name_of(d) for d in {p.parent for p in every_module()}
                if not (d / "__init__.py").exists()] == []

    def test_the_adapter_is_where_feast_s_private_api_is_used(self):
        private = {m for path in sources("adapters/feast")
                   for m in feast_imports(imported_modules(path)) if not is_public_feast(m)}
        assert {"feast.repo_operations", "feast.infra.online_stores.sqlite",
                "feast.protos.feast.core.Registry_pb2"} <= private


class TestFeatureNamesOnlyInTheSpec:
    @pytest.mark.parametrize("path", [p for p in every_module() if p != SPEC], ids=name_of)
    def test_no_module_but_the_spec_spells_a_feature_s_name(self, path):
        assert spelled_names(path.read_text(), feature_names()) == []

    def test_the_customers_table_s_columns_left_out_are_its_columns(self):
        assert set(CUSTOMER_SCHEMA.names) >= CUSTOMER_COLUMNS

    def test_the_names_are_every_kind_of_feature(self):
        names = feature_names()
        assert {"event_count_30d", "last_event_at", "days_since_last_event", "tenure_days",
                "event_count_21d", "days_since_last_core_event", "lock_in_event_count_90d",
                "adoption_score_30d_ago"} <= names


class TestTheRuleItself:
    def test_an_import_inside_a_function_is_found(self, tmp_path):
        module = PACKAGE / "adapters" / "feast" / "online.py"
        assert "feast.infra.online_stores.sqlite" in imported_modules(module)

    def test_an_outer_layer_is_told_from_a_module_that_only_starts_alike(self):
        assert is_outer("usage_features.ingestion.ingest")
        assert is_outer("usage_features.service_layer.refresh")
        assert not is_outer("usage_features.service_layer_extras")
        assert not is_outer("usage_features.domain.entities")

    def test_the_layers_named_are_the_package_s_own(self):
        present = {p.stem for p in PACKAGE.iterdir() if not p.name.startswith("_")}
        assert set(OUTER_LAYERS) <= present
        assert {layer for layers in OUTWARD for layer in layers} <= present
        assert all(path.exists() for layer in PURE_CORE for path in sources(layer))

    def test_an_inward_layer_importing_an_outer_one_is_found(self):
        imports = imported_modules(
            PACKAGE / "training" / "x.py",
            "def f():\n    from usage_features.serving.status import ACTIVE\n")
        assert layer_of(imports[0]) == "serving"

    def test_the_core_importing_an_engine_an_adapter_or_a_layer_is_found(self):
        spec = PACKAGE / "features" / "spec.py"
        source = ("import duckdb\n"
                  "from usage_features.adapters.duckdb_connection import sql_string\n"
                  "from usage_features.features import build\n"
                  "from usage_features.config import SERVICE_NAME\n"
                  "import numpy as np\nfrom usage_features.features import request_time\n"
                  "from usage_features.domain.value_objects import EARLY_LIFE_DAYS\n")
        assert not_core(imported_modules(spec, source)) == [
            "duckdb", "usage_features.adapters.duckdb_connection",
            "usage_features.adapters.duckdb_connection.sql_string",
            "usage_features.features.build", "usage_features.config",
            "usage_features.config.SERVICE_NAME"]

    def test_feast_imported_anyhow_is_found(self):
        path = PACKAGE / "features" / "store.py"
        source = ("import feast\nfrom feast import FeatureStore\n"
                  "def f():\n    from feast.repo_operations import apply_total\n")
        assert feast_imports(imported_modules(path, source)) == [
            "feast", "feast", "feast.FeatureStore", "feast.repo_operations",
            "feast.repo_operations.apply_total"]

    def test_feast_s_public_names_are_told_from_its_inside(self):
        assert is_public_feast("feast") and is_public_feast("feast.FeatureView")
        assert is_public_feast("feast.types.Float64")
        assert is_public_feast("feast.on_demand_feature_view.on_demand_feature_view")
        assert not is_public_feast("feast.repo_operations")
        assert not is_public_feast("feast.repo_config.load_repo_config")
        assert not is_public_feast("feast.infra.offline_stores.contrib.spark_offline_store")
        assert not is_public_feast("feast.on_demand_feature_view.OnDemandFeatureView")

    def test_each_process_state_change_is_found(self):
        source = """
import logging, os, sys
os.environ["FEAST_FS_YAML_FILE_PATH"] = "x"
del os.environ["A"]
os.environ.pop("A", None)
os.environ.setdefault("A", "1")
sys.path.insert(0, "repo")
sys.path.remove("repo")
os.chdir("/")
logging.getLogger("feast").setLevel(logging.ERROR)
os.environ.get("A")
print(sys.path[0], os.getcwd())
"""
        assert state_changes(source) == [
            "os.environ[...]", "os.environ[...]", "os.environ.pop", "os.environ.setdefault",
            "sys.path.insert", "sys.path.remove", "os.chdir", "logging.getLogger().setLevel"]

    def test_a_feature_s_name_is_found_in_each_form_and_not_in_documentation(self):
        source = ('"""Module docs may name tenure_days."""\n'
                  'COUNT = "event_count_30d"\n'
                  'REF = "customer_usage:event_count_30d"\n'
                  'TEMPLATE = "last active {days_since_last_event:.0f} days ago"\n'
                  'def f(frame, name):\n'
                  '    """Function docs may name tenure_days too."""\n'
                  '    message = f"{name}: tenure_days is null"\n'
                  '    return frame.tenure_days, "event_count_30d_more", "my_event_count_30d"\n')
        assert spelled_names(source, feature_names()) == [
            "2: 'event_count_30d' in a string", "3: 'event_count_30d' in a string",
            "4: 'days_since_last_event' in a string", "7: 'tenure_days' in a string",
            "8: .tenure_days"]


#: A comment that only instructs a tool explains nothing.
_PRAGMA = re.compile(r"#\s*(noqa|type:|pragma|fmt:|pylint:|isort:)", re.IGNORECASE)


def _import_runs(tree: ast.AST) -> list[list[ast.stmt]]:
    """Each run of consecutive import statements in a function (its body or any block in it)."""
    runs = []

    def visit(node: ast.AST, in_function: bool) -> None:
        in_function = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for _, value in ast.iter_fields(node):
            if in_function and isinstance(value, list):
                run: list[ast.stmt] = []
                for statement in value:
                    if isinstance(statement, (ast.Import, ast.ImportFrom)):
                        run.append(statement)
                    elif run:
                        runs.append(run)
                        run = []
                if run:
                    runs.append(run)
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(tree, False)
    return runs


def unexplained_imports(source: str) -> list[str]:
    """Each import inside a function (``line: statement``) without a comment saying why: a
    ``#`` comment on its own line directly above it, or directly above the first import of
    the run of consecutive imports it belongs to, or a trailing comment on the statement."""
    own_line, trailing = set(), set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if (token.type == tokenize.COMMENT and token.string.strip("# ")
                and not _PRAGMA.match(token.string)):
            alone = not token.line[:token.start[1]].strip()
            (own_line if alone else trailing).add(token.start[0])
    lines = source.splitlines()
    found = []
    for run in _import_runs(ast.parse(source)):
        explained_run = run[0].lineno - 1 in own_line
        for node in run:
            statement = set(range(node.lineno, node.end_lineno + 1))
            if not (explained_run or node.lineno - 1 in own_line
                    or statement & (trailing | own_line)):
                found.append(f"{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


class TestImportsInsideFunctions:
    """An import inside a function says why it is not at the top: the CLI's ``--help`` must not
    load the heavy libraries, an optional extra, an import cycle, a slow import few callers
    need. Anything else goes at the top of the module."""

    @pytest.mark.parametrize("path", every_module(), ids=name_of)
    def test_every_import_inside_a_function_has_a_comment_saying_why(self, path):
        assert unexplained_imports(path.read_text()) == []

    def test_an_uncommented_one_is_found(self):
        source = ("import os\n"
                  "def f():\n"
                  "    import yaml\n"
                  "    return yaml\n")
        assert unexplained_imports(source) == ["3: import yaml"]

    def test_a_commented_one_is_accepted_above_it_above_its_run_or_after_it(self):
        source = ("def f(sink):\n"
                  "    # deferred: the CLI's --help\n"
                  "    from usage_features.service_layer import train\n"
                  "\n"
                  "    from usage_features.training import backtest\n"
                  "    if sink:\n"
                  "        # deferred: the postgres extra\n"
                  "        import psycopg\n"
                  "    import yaml  # deferred: a slow import\n"
                  "    from feast import (  # deferred: Feast loads in ~3 s\n"
                  "        FeatureStore,\n"
                  "    )\n"
                  "    async def g():\n"
                  "        with open('x'):\n"
                  "            # deferred: the report extra\n"
                  "            import matplotlib\n"
                  "    return train, backtest, psycopg, yaml, FeatureStore, g\n")
        assert unexplained_imports(source) == []

    def test_a_comment_elsewhere_or_a_tool_s_pragma_explains_nothing(self):
        source = ("def f():\n"
                  "    # deferred: the CLI's --help\n"
                  "\n"
                  "    import pandas\n"
                  "    # deferred: the spark extra\n"
                  "    import pyspark\n"
                  "    print(pandas)\n"
                  "    import duckdb\n"
                  "    import numpy  # noqa: PLC0415\n"
                  "    #\n"
                  "    import sklearn\n"
                  "class C:\n"
                  "    import json\n"
                  "    def m(self):\n"
                  "        return [x for x in ()]\n"
                  "        import csv\n")
        assert unexplained_imports(source) == [
            "4: import pandas", "8: import duckdb", "9: import numpy  # noqa: PLC0415",
            "11: import sklearn", "16: import csv"]

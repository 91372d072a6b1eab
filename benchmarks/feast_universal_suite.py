"""Feast's universal offline-store tests against this project's store and Feast's own, side by side.

Not part of CI: it needs Feast's source tree (the released wheel ships no tests) and a few test
dependencies. Feast's tests from its master just after the 0.66.0 release (f0bc0700b) run
against the installed 0.67.0::

    git clone https://github.com/feast-dev/feast /tmp/feast && git -C /tmp/feast checkout f0bc0700b
    pip install --target /tmp/feast-suite-deps minio testcontainers python-keycloak grpcio \
        'pytest-env<1.2' pytest-mock pytest-lazy-fixture==0.6.3 'pytest<8'
    # then remove from /tmp/feast-suite-deps what the venv has, but pytest and its plugins
    pip install --no-deps --upgrade --target /tmp/feast-suite-deps pytest==7.4.4 \
        pytest-asyncio==0.23.8 pytest-timeout==2.3.1 pytest-xdist==3.6.1 execnet
    python benchmarks/feast_universal_suite.py --feast-sdk /tmp/feast/sdk/python \
        --extra-path /tmp/feast-suite-deps

Feast's tests need pytest < 8 (and so pytest-env < 1.2). They are copied out of ``sdk/python``
(with its ``pytest.ini``) and run from the copy: run in place, they would import the ``feast``
package beside them, Feast's source at that commit, instead of the installed Feast. The script
prints which ``feast`` the tests import and stops if it is the source's.

Wiring (as Feast's ``duckdb_repo_configuration.py`` does): a module named by
``FULL_REPO_CONFIGS_MODULE`` lists one ``FileDataSourceCreator`` on the local provider with the
SQLite online store; for ``asof`` and ``duckdb`` the creator's ``create_offline_store_config`` is
replaced so that it returns that store's config. Replacing it on the class (not a subclass) also
reaches the tests marked ``only=["file"]`` and the un-marked materialization tests, which pick
``FileDataSourceCreator`` themselves. Prints passed/failed/skipped per test file and store.

Feast marks ``test_non_entity_mode.py`` Ray-only (``ray_offline_stores_only``) and deselects it
locally; ``--tests tests/integration/offline_store/test_non_entity_mode.py --markers ''`` runs
it with every store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

CONFIGS = {
    "asof": ("from usage_features.adapters.feast_offline_store import "
             "DuckDBAsOfOfflineStoreConfig as Config"),
    "duckdb": "from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig as Config",
    "file": None,  # Feast's default (Dask) store: the creator as it is
}

MODULE = '''
from tests.universal.feature_repos.universal.data_sources.file import FileDataSourceCreator
{import_config}
if {patch}:
    FileDataSourceCreator.create_offline_store_config = lambda self: Config()
AVAILABLE_OFFLINE_STORES = [("local", FileDataSourceCreator)]
AVAILABLE_ONLINE_STORES = {{"sqlite": ({{"type": "sqlite"}}, None)}}
'''


def copy_tests(sdk: Path, work: Path) -> Path:
    """Feast's ``tests`` package and ``pytest.ini`` copied into ``work/feast-tests``.

    Run from ``sdk`` (or with it on the path), the tests would import the ``feast`` package
    beside them, Feast's source at that commit, instead of the installed one.
    """
    root = work / "feast-tests"
    shutil.copytree(sdk / "tests", root / "tests", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(sdk / "pytest.ini", root / "pytest.ini")
    return root


def run_store(store: str, root: Path, tests: str, extra: list[str], work: Path,
              markers: str = "not ray_offline_stores_only") -> Path:
    """Run the tests (under ``root``, see :func:`copy_tests`) with ``store``; returns the JUnit
    XML report."""
    name = f"uf_suite_{store}"
    import_config = CONFIGS[store] or ""
    (work / f"{name}.py").write_text(MODULE.format(import_config=import_config,
                                                   patch=CONFIGS[store] is not None))
    report = work / f"{store}.xml"
    env = {**os.environ, "FULL_REPO_CONFIGS_MODULE": name, "IS_TEST": "True",
           "FEAST_IS_LOCAL_TEST": "True",
           "PYTHONPATH": os.pathsep.join([str(work), *extra, str(root)])}
    command = [sys.executable, "-m", "pytest", tests, "--integration", "-p", "no:cacheprovider",
               # as Feast's own local run: no Ray-only tests (``markers``), no Great Expectations
               "-m", markers,
               "--ignore=tests/integration/offline_store/test_dqm_validation.py",
               "-o", "addopts=", "-o", "filterwarnings=ignore::pytest.PytestConfigWarning",
               "-q", "--timeout=900", f"--junitxml={report}"]
    print(f"[{store}] {' '.join(command)}", file=sys.stderr, flush=True)
    subprocess.run(command, cwd=root, env=env, stdout=subprocess.DEVNULL, check=False)
    return report


def installed_feast(root: Path, extra: list[str]) -> str:
    """Where the tests' ``import feast`` lands, with their path and working directory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*extra, str(root)])}
    return subprocess.run(
        [sys.executable, "-c", "import feast; print(feast.__version__, feast.__file__)"],
        cwd=root, env=env, capture_output=True, text=True, check=True).stdout.strip()


def outcomes(report: Path) -> dict[str, Counter]:
    """passed/failed/skipped counts per test file in a JUnit XML report."""
    per_file: dict[str, Counter] = defaultdict(Counter)
    for case in ET.parse(report).iter("testcase"):
        file = case.get("classname", "").rsplit(".", 1)[-1]
        kinds = {child.tag for child in case}
        outcome = ("failed" if kinds & {"failure", "error"}
                   else "skipped" if "skipped" in kinds else "passed")
        per_file[file][outcome] += 1
    return per_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feast-sdk", type=Path, required=True,
                        help="Feast's sdk/python directory (with tests/ and pytest.ini)")
    parser.add_argument("--extra-path", action="append", default=[],
                        help="a directory of extra test dependencies (repeatable)")
    parser.add_argument("--stores", default="asof,duckdb,file")
    parser.add_argument("--tests", default="tests/integration/offline_store")
    parser.add_argument("--markers", default="not ray_offline_stores_only",
                        help="pytest -m expression; '' also runs Feast's Ray-only tests")
    parser.add_argument("--report-dir", type=Path, default=None,
                        help="keep the JUnit XML reports (with failure messages) here")
    args = parser.parse_args()
    stores = args.stores.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.report_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        root = copy_tests(args.feast_sdk.resolve(), work.resolve())
        feast = installed_feast(root, args.extra_path)
        print(f"feast under test: {feast}", file=sys.stderr, flush=True)
        if str(args.feast_sdk.resolve()) in feast:
            raise SystemExit(f"the tests would import Feast's source, not the installed Feast: "
                             f"{feast}")
        results = {s: outcomes(run_store(s, root, args.tests, args.extra_path,
                                         work.resolve(), args.markers))
                   for s in stores}
    files = sorted({f for r in results.values() for f in r})
    print(f"{'file':45}" + "".join(f"{s + ' pass/fail/skip':>24}" for s in stores))
    totals = {s: Counter() for s in stores}
    for file in files:
        row = f"{file:45}"
        for s in stores:
            c = results[s].get(file, Counter())
            totals[s].update(c)
            row += f"{c['passed']:>14}/{c['failed']}/{c['skipped']}".rjust(24)
        print(row)
    print(f"{'total':45}" + "".join(
        f"{totals[s]['passed']:>14}/{totals[s]['failed']}/{totals[s]['skipped']}".rjust(24)
        for s in stores))


if __name__ == "__main__":
    main()

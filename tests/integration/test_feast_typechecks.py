"""Feast imported without typeguard's instrumentation of its own classes, in the console script's
process; every other use of typeguard checked as before; the variable keeps Feast's checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from usage_features.adapters.feast.typechecks import KEEP_CHECKS

#: Run in a new process (this one has imported Feast): whether the skip took, whether Feast's
#: ``Entity.__init__`` checks its arguments, whether a function of another module does.
PROBE = """
import sys
from usage_features.adapters.feast.typechecks import skip_feast_typechecks
if sys.argv[1] == "console":
    from usage_features.cli import main
    sys.argv = ["usage-features", "--help"]
    try:
        main()
    except SystemExit:
        pass
    took = "console"
else:
    took = skip_feast_typechecks()
import feast
import typeguard

@typeguard.typechecked
def half(x: int) -> int:
    return x // 2

try:
    half("two")
    other = "unchecked"
except typeguard.TypeCheckError:
    other = "checked"
instrumented = "check_argument_types_internal" in feast.Entity.__init__.__code__.co_names
print(took, instrumented, other, file=sys.stderr)
"""


@pytest.fixture
def probe(tmp_path):
    script = tmp_path / "probe.py"  # a file: typeguard instruments from the source
    script.write_text(PROBE)

    def run(how: str, **env: str) -> str:
        done = subprocess.run([sys.executable, str(script), how], capture_output=True,
                              text=True, env={**os.environ, **env}, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr.strip().splitlines()[-1]

    return run


def test_feast_s_own_classes_are_not_instrumented_and_other_modules_still_are(probe):
    assert probe("call") == "True False checked"


def test_the_console_script_skips_them_before_any_command_imports_feast(probe):
    assert probe("console") == "console False checked"


def test_the_variable_keeps_feast_s_checks(probe):
    assert probe("call", **{KEEP_CHECKS: "1"}) == "False True checked"

"""Importing the package changes nothing of the process: not its environment, not its working
directory. (Each command sets what it needs where it starts: ``usage_features.cli.main``.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: In a fresh interpreter: the environment and working directory before and after importing
#: every module of the package (``__main__`` modules run the CLI, so they are left out). The
#: libraries that set variables of their own on import (scikit-learn: ``KMP_*``; Feast's
#: metrics: ``PROMETHEUS_MULTIPROC_DIR``) are imported first: theirs are not the package's.
IMPORT_EVERYTHING = """
import importlib, json, os, pkgutil, sys
import feast.metrics, sklearn
import usage_features
before = (dict(os.environ), os.getcwd())
names = [m.name for m in pkgutil.walk_packages(usage_features.__path__, "usage_features.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
after = (dict(os.environ), os.getcwd())
print(json.dumps({"modules": len(names), "before": before, "after": after}))
"""


class TestImportingThePackage:
    def test_importing_every_module_leaves_the_environment_and_directory_unchanged(self):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], env=env,
                              capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["modules"] > 50  # the package, not an empty walk
        assert result["after"] == result["before"]
        assert "OMP_WAIT_POLICY" not in result["after"][0]

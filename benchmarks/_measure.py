"""Run one benchmark phase in a child process and report its wall time and peak memory."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(script: str, *args: str) -> dict:
    """``python script phase ARGS``: the child prints one JSON line with its own figures."""
    started = time.perf_counter()
    # as the console script sets it (usage_features.cli.main): OpenMP threads wait passively
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        return {"phase": args[0], "error": done.stderr.strip().splitlines()[-1]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.setdefault("seconds", round(time.perf_counter() - started, 2))
    return result


def report(**figures) -> None:
    """Print a phase's figures as the last line of output, with its peak memory."""
    print(json.dumps({**figures, "peak_rss_mib": round(peak_rss_mib())}))

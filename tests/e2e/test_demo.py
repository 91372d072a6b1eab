"""The README's main command, end to end (slow: run with `pytest -m slow` or `make test-all`).

Checks what the demo produces, not its headings: the numbers it prints against the files it
wrote (event log, quarantine, feature tables, model and its metadata, reports, score snapshots).
"""

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from usage_features.adapters.score_snapshots import snapshot_path
from usage_features.cli import app
from usage_features.config import SERVICE_NAME, RepoPaths
from usage_features.features.retrieval import served_feature_names
from usage_features.training.persistence import metadata_path

CUSTOMERS = 400
DAILY_DAYS = 3  # DemoConfig.daily_days


def number(text: str) -> int:
    return int(text.replace(",", ""))


def stored_rows(path: Path) -> int:
    files = [str(p) for p in sorted(path.rglob("*.parquet"))] if path.is_dir() else [str(path)]
    with duckdb.connect() as con:
        return con.execute(f"SELECT count(*) FROM read_parquet({files!r})").fetchall()[0][0]


@pytest.mark.slow
def test_the_demo_writes_what_it_reports_for_every_step(tmp_path):
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--workdir", str(workdir),
                                      "--customers", str(CUSTOMERS)])
    assert result.exit_code == 0, result.output
    # one line: the console wraps long lines at its width
    output, paths = " ".join(result.stdout.split()), RepoPaths(workdir / "feature_repo")

    assert re.search(rf"raw events \(some deliberately broken\) for {CUSTOMERS} customers", output)

    read, accepted, rejected, duplicates = map(number, re.search(
        r"read ([\d,]+): accepted ([\d,]+), rejected ([\d,]+), duplicates ([\d,]+)",
        output).groups())
    assert read == accepted + rejected + duplicates and rejected > 0

    assert f"{CUSTOMERS:,} customers loaded" in output
    feature_rows = number(re.search(r"([\d,]+) compact feature rows", output).group(1))
    assert stored_rows(paths.customer_usage) >= feature_rows > 0  # refresh adds rows later

    refreshes = re.findall(r"(\d{4}-\d\d-\d\d): \d+ new inbox file\(s\), ([\d,]+) events "
                           r"accepted \(([\d,]+) rejected\); scored ([\d,]+) of [\d,]+ active "
                           r"customers", output)
    assert len(refreshes) == DAILY_DAYS
    for day, _, _, scored in refreshes:
        snapshot = snapshot_path(paths.scores, date.fromisoformat(day))
        assert len(pd.read_parquet(snapshot)) == number(scored) > 0
    arrived = sum(number(events) for _, events, _, _ in refreshes)
    assert stored_rows(paths.events) == accepted + arrived
    later_rejected = sum(number(rejected) for _, _, rejected, _ in refreshes)
    assert stored_rows(paths.quarantine) == rejected + later_rejected

    metadata = json.loads(metadata_path(paths.model).read_text())
    assert metadata["feature_service"] == SERVICE_NAME
    assert metadata["features"] == served_feature_names()
    (metrics,) = paths.reports.rglob("metrics.csv")  # the one training's report
    printed = re.findall(r"ROC AUC (\d\.\d{3})", output)
    assert printed == [f"{auc:.3f}" for auc in pd.read_csv(metrics).roc_auc]
    assert all(0.5 < float(auc) < 1 for auc in printed)
    assert (metrics.parent / "summary.md").is_file() and list(metrics.parent.glob("*.png"))
    assert "cust-unknown: unknown customer" in output
    assert list(paths.reports.rglob("monitor.md"))

    # it ends with the web pages' address and the token their sign-in asks for (kept in the
    # repo, so `serve` asks for the same one)
    assert "open http://127.0.0.1:8000/ and sign in with the token" in output
    assert (paths.data / "web_token").read_text().strip() in output

"""`usage-features ingest` and `events` end to end through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pandas as pd
from typer.testing import CliRunner

from usage_features.cli import app

runner = CliRunner()


def raw_rows():
    ok = [
        {"event_id": str(uuid.uuid4()), "customer_id": "acme", "timestamp": ts,
         "event_type": kind, "feature_adoption_score": score}
        for ts, kind, score in [
            ("2026-02-27T09:00:00Z", "login", 0.3),
            ("2026-02-20T09:00:00Z", "monitoring_run", 0.3),
            ("2026-01-15T09:00:00Z", "integration_connect", 0.2),
        ]
    ]
    bad = [
        {**ok[0], "event_id": "bad\u200bid"},
        {**ok[1], "event_id": str(uuid.uuid4()), "timestamp": "2026-02-20 09:00:00"},
        {**ok[2], "event_id": str(uuid.uuid4()), "event_type": "teleport"},
    ]
    return ok + bad + [dict(ok[0])]


def test_ingest_prints_a_json_summary_that_adds_up(tmp_path):
    source = tmp_path / "events.csv"
    pd.DataFrame(raw_rows()).to_csv(source, index=False)

    result = runner.invoke(app, ["ingest", str(source), "--repo", str(tmp_path / "repo"),
                                 "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("read", "accepted", "rejected", "duplicates")} == {
        "read": 7, "accepted": 3, "rejected": 3, "duplicates": 1}
    assert summary["rejected_by_reason"] == {
        "invalid_event_id": 1, "naive_timestamp": 1, "unknown_event_type": 1}

    again = json.loads(runner.invoke(app, ["ingest", str(source), "--repo",
                                           str(tmp_path / "repo"), "--json"]).stdout)
    assert (again["accepted"], again["duplicates"]) == (0, 4)


def test_ingest_of_a_file_missing_a_column_fails_naming_it(tmp_path):
    source = tmp_path / "events.csv"
    pd.DataFrame(raw_rows()).drop(columns="customer_id").to_csv(source, index=False)

    result = runner.invoke(app, ["ingest", str(source), "--repo", str(tmp_path / "repo")])

    assert result.exit_code == 2
    assert "missing required column(s): customer_id" in result.output
    assert not (tmp_path / "repo" / "data" / "events").exists()


def test_events_shows_windowed_counts_as_of_a_time(tmp_path):
    source = tmp_path / "events.jsonl"
    pd.DataFrame(raw_rows()).to_json(source, orient="records", lines=True)
    runner.invoke(app, ["ingest", str(source), "--repo", str(tmp_path / "repo")])

    result = runner.invoke(app, ["events", "acme", "--repo", str(tmp_path / "repo"),
                                 "--as-of", "2026-03-01T00:00:00"])

    assert result.exit_code == 0, result.output
    assert "7d: 1, 30d: 2, 90d: 3" in result.stdout


def test_the_package_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "usage_features", "--help"],
                            capture_output=True, text=True, check=True)
    assert "ingest" in result.stdout

"""`usage-features vocabulary` end to end through the command line."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from typer.testing import CliRunner

from usage_features.cli import app
from usage_features.domain.vocabulary import Role, parse_vocabulary
from usage_features.ingestion.settings import load_settings, settings_path

runner = CliRunner()

KINDS = (["Search"] * 3 + ["add_contact"] * 2 + ["login", "events", "add-contact", ""])


def export(tmp_path, column="event_type"):
    frame = pd.DataFrame({"account_id": "acme", column: KINDS})
    csv, jsonl = tmp_path / "a.csv", tmp_path / "b.jsonl"
    frame.to_csv(csv, index=False)
    frame.to_json(jsonl, orient="records", lines=True)
    return [str(csv), str(jsonl)]


def test_the_proposed_block_is_printed_and_valid_as_written(tmp_path):
    result = runner.invoke(app, ["vocabulary", *export(tmp_path), "--repo",
                                 str(tmp_path / "repo")])

    assert result.exit_code == 0, result.output
    vocabulary = parse_vocabulary(yaml.safe_load(result.stdout)["types"])
    assert vocabulary.names == ("search", "add_contact", "login")
    assert "3 event names in 2 file(s), 16 events" in result.stdout.splitlines()[0]
    assert "'events' (2 events) left out" in result.stderr
    assert "'add-contact' (2 events) left out" in result.stderr
    assert "2 row(s) without an event name" in result.stderr
    assert not (tmp_path / "repo").exists()  # printing writes nothing


def test_json_lists_names_and_counts(tmp_path):
    result = runner.invoke(app, ["vocabulary", *export(tmp_path), "--repo",
                                 str(tmp_path / "repo"), "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["types"] == [{"name": "search", "count": 6, "role": None},
                                {"name": "add_contact", "count": 4, "role": None},
                                {"name": "login", "count": 2, "role": None}]
    assert (summary["files"], summary["events"]) == (2, 16)
    assert [x["name"] for x in summary["left_out"]] == ["add-contact", "events"]


def test_write_merges_into_the_repo_settings(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    settings_path(repo).write_text(
        "events:\n"
        "  columns: {action: event_type}\n"
        "  types: {search: {role: core}, gone: {role: lock_in}}\n"
        "limits: {max_future_hours: 6}  # a comment\n")
    paths = export(tmp_path, column="action")

    result = runner.invoke(app, ["vocabulary", *paths, "--repo", str(repo), "--write"])

    assert result.exit_code == 0, result.output
    assert "not seen in the export: gone" in result.stderr
    assert "comments and layout were not" in result.stderr
    raw = yaml.safe_load(settings_path(repo).read_text())
    assert raw["limits"] == {"max_future_hours": 6}
    assert raw["events"]["columns"] == {"action": "event_type"}
    vocabulary = parse_vocabulary(raw["events"]["types"])
    assert vocabulary.names == ("search", "add_contact", "login")
    assert [t.name for t in vocabulary.of_role(Role.CORE)] == ["search"]
    assert load_settings(repo).limits.max_future.total_seconds() == 6 * 3600
    assert "search: {role: core}" in result.stdout


def test_map_flags_override_the_stored_mapping(tmp_path):
    result = runner.invoke(app, ["vocabulary", *export(tmp_path, column="action"), "--repo",
                                 str(tmp_path / "repo"), "--map", "action=event_type", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["events"] == 16


def test_a_file_without_event_types_fails_with_status_2(tmp_path):
    result = runner.invoke(app, ["vocabulary", *export(tmp_path, column="action"), "--repo",
                                 str(tmp_path / "repo")])

    assert result.exit_code == 2
    assert "missing required column(s): event_type" in result.stderr


def test_an_unreadable_file_fails_with_status_2(tmp_path):
    bad = tmp_path / "events.parquet"
    bad.write_bytes(b"not parquet")

    result = runner.invoke(app, ["vocabulary", str(bad), "--repo", str(tmp_path / "repo")])

    assert result.exit_code == 2
    assert "not a readable Parquet file" in result.stderr


def test_a_write_that_would_be_invalid_leaves_the_file_alone(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    text = "events:\n  types: {search: {role: star}}\n"
    settings_path(repo).write_text(text)

    result = runner.invoke(app, ["vocabulary", *export(tmp_path), "--repo", str(repo),
                                 "--write"])

    assert result.exit_code == 2
    assert "unknown role 'star'" in result.stderr
    assert settings_path(repo).read_text() == text


def test_write_stores_the_map_flags_beside_the_types_so_ingest_needs_none(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("acct,at,name\n7,2026-03-01T10:00:00Z,Search\n7,2026-03-01T11:00:00Z,"
                      "login\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    result = runner.invoke(app, ["vocabulary", str(export), "--repo", str(repo), "--write",
                                 "--map", "acct=customer_id", "--map", "at=timestamp",
                                 "--map", "name=event_type"])
    assert result.exit_code == 0, result.output
    settings = load_settings(repo)
    assert settings.event_columns == {"acct": "customer_id", "at": "timestamp",
                                      "name": "event_type"}
    assert set(settings.vocabulary.names) == {"login", "search"}
    ingested = runner.invoke(app, ["ingest", str(export), "--repo", str(repo), "--json"])
    assert ingested.exit_code == 0, ingested.output

"""The inbox: each file's content ingested once, whatever its name."""

from __future__ import annotations

from datetime import UTC, datetime

from usage_features.ingestion.inbox import Inbox

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def test_a_new_inbox_lists_its_event_files_in_name_order(tmp_path):
    for name, text in [("b.csv", "2"), ("a.parquet", "1"), ("notes.txt", "x"), (".part.csv", "3")]:
        (tmp_path / name).write_text(text)
    inbox = Inbox(tmp_path, tmp_path / "manifest.json")
    assert [f.path.name for f in inbox.pending()] == ["a.parquet", "b.csv"]


def test_a_recorded_file_is_not_pending_even_under_another_name(tmp_path):
    (tmp_path / "day1.csv").write_text("rows of day 1")
    inbox = Inbox(tmp_path, tmp_path / "state" / "manifest.json")
    [first] = inbox.pending()
    inbox.record(first, NOW, {"accepted": 1})
    (tmp_path / "day1-resent.csv").write_text("rows of day 1")
    assert inbox.pending() == []
    assert inbox.ingested()[first.digest] == {
        "file": "day1.csv", "ingested_at": NOW.isoformat(), "accepted": 1}


def test_a_file_rewritten_with_new_content_is_pending_again(tmp_path):
    (tmp_path / "day.csv").write_text("v1")
    inbox = Inbox(tmp_path, tmp_path / "state" / "manifest.json")
    inbox.record(inbox.pending()[0], NOW, {})
    (tmp_path / "day.csv").write_text("v1 and more")
    assert [f.path.name for f in inbox.pending()] == ["day.csv"]


def test_two_files_with_the_same_content_are_ingested_once(tmp_path):
    (tmp_path / "a.csv").write_text("same")
    (tmp_path / "b.csv").write_text("same")
    assert [f.path.name for f in Inbox(tmp_path, tmp_path / "m.json").pending()] == ["a.csv"]


def test_a_missing_inbox_has_nothing_pending(tmp_path):
    assert Inbox(tmp_path / "absent", tmp_path / "m.json").pending() == []

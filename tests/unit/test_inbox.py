"""The inbox: each complete file's content ingested once, whatever its name; what is not a
complete regular file waits, is set aside or is refused, never read."""

from __future__ import annotations

import builtins
import gzip
import hashlib
import os
import threading
from datetime import UTC, datetime

import pytest

from usage_features.ingestion import inbox as inbox_module
from usage_features.ingestion.inbox import Inbox, shown

NOW = datetime(2025, 6, 1, tzinfo=UTC)
#: The smallest byte string that has a Parquet file's magic at both ends.
PARQUET_LIKE = b"PAR1" + b"\0" * 8 + b"PAR1"


def names(entries) -> list[str]:
    return [e.path.name if hasattr(e, "path") else e.name for e in entries]


def test_a_new_inbox_lists_its_event_files_in_name_order(tmp_path):
    for name, text in [("b.csv", b"2\n"), ("a.parquet", PARQUET_LIKE), ("notes.txt", b"x"),
                       (".part.csv", b"3\n"), ("c.csv.part", b"4")]:
        (tmp_path / name).write_bytes(text)
    inbox = Inbox(tmp_path, tmp_path / "manifest.json")
    assert [f.path.name for f in inbox.pending()] == ["a.parquet", "b.csv"]


def test_a_recorded_file_is_not_pending_even_under_another_name(tmp_path):
    (tmp_path / "day1.csv").write_text("rows of day 1\n")
    inbox = Inbox(tmp_path, tmp_path / "state" / "manifest.json")
    [first] = inbox.pending()
    inbox.record(first, NOW, {"accepted": 1})
    (tmp_path / "day1-resent.csv").write_text("rows of day 1\n")
    assert inbox.pending() == []
    assert inbox.ingested()[first.digest] == {
        "file": "day1.csv", "ingested_at": NOW.isoformat(), "accepted": 1}


def test_a_file_rewritten_with_new_content_is_pending_again(tmp_path):
    (tmp_path / "day.csv").write_text("v1\n")
    inbox = Inbox(tmp_path, tmp_path / "state" / "manifest.json")
    inbox.record(inbox.pending()[0], NOW, {})
    (tmp_path / "day.csv").write_text("v1\nand more\n")
    assert [f.path.name for f in inbox.pending()] == ["day.csv"]


def test_two_files_with_the_same_content_are_ingested_once(tmp_path):
    (tmp_path / "a.csv").write_text("same\n")
    (tmp_path / "b.csv").write_text("same\n")
    assert [f.path.name for f in Inbox(tmp_path, tmp_path / "m.json").pending()] == ["a.csv"]


def test_a_missing_inbox_has_nothing_pending(tmp_path):
    assert Inbox(tmp_path / "absent", tmp_path / "m.json").pending() == []


class TestCompleteness:
    @pytest.mark.parametrize("name", ["day.csv", "day.tsv", "day.jsonl", "day.json"])
    def test_a_text_file_without_a_final_newline_waits_until_it_has_one(self, tmp_path, name):
        path = tmp_path / name
        path.write_text("event_id,score\ne1,0.635\ne2,0.6")  # cut inside the last field
        inbox = Inbox(tmp_path, tmp_path / "m.json")
        scan = inbox.scan()
        assert scan.pending == [] and names(scan.waiting) == [name]
        assert "does not end with a newline" in scan.waiting[0].reason
        assert not inbox.manifest.exists()  # waiting is not recorded
        path.write_text("event_id,score\ne1,0.635\ne2,0.635\n")
        assert names(inbox.scan().pending) == [name]

    def test_a_gzip_file_waits_while_its_stream_is_cut_or_its_text_has_no_final_newline(
            self, tmp_path):
        whole = gzip.compress(b"event_id\n" + b"e\n" * 10_000)
        path = tmp_path / "day.csv.gz"
        path.write_bytes(whole[: len(whole) // 2])
        inbox = Inbox(tmp_path, tmp_path / "m.json")
        assert "gzip stream ends early" in inbox.scan().waiting[0].reason
        path.write_bytes(gzip.compress(b"event_id\ne"))
        assert "does not end with a newline" in inbox.scan().waiting[0].reason
        path.write_bytes(whole)
        assert names(inbox.scan().pending) == ["day.csv.gz"]

    def test_a_parquet_file_without_its_footer_is_set_aside_with_its_reason(self, tmp_path):
        (tmp_path / "cut.parquet").write_bytes(PARQUET_LIKE[:-3])
        (tmp_path / "whole.parquet").write_bytes(PARQUET_LIKE)
        scan = Inbox(tmp_path, tmp_path / "m.json").scan()
        assert names(scan.pending) == ["whole.parquet"]
        assert names(scan.set_aside) == ["cut.parquet"]
        assert "no footer" in scan.set_aside[0].reason

    def test_an_empty_file_is_set_aside_and_taken_once_its_content_changes(self, tmp_path):
        path = tmp_path / "empty.csv"
        path.write_bytes(b"")
        (tmp_path / "other.csv").write_text("rows\n")
        inbox = Inbox(tmp_path, tmp_path / "m.json")
        scan = inbox.scan()
        assert names(scan.pending) == ["other.csv"]
        [entry] = scan.set_aside
        assert (entry.name, entry.reason) == ("empty.csv", "empty (0 bytes)")
        assert entry.item.digest == hashlib.sha256(b"").hexdigest()
        inbox.set_aside(entry.item, NOW, entry.reason)
        assert inbox.set_aside_files() == {entry.item.digest: {
            "file": "empty.csv", "set_aside_at": NOW.isoformat(), "reason": "empty (0 bytes)"}}
        assert inbox.ingested() == {}  # set aside is not ingested
        assert names(inbox.scan().set_aside) == ["empty.csv"]  # looked at again, still empty
        path.write_text("rows of the day\n")
        assert names(inbox.scan().pending) == ["empty.csv", "other.csv"]

    def test_an_unreadable_file_is_set_aside_with_its_reason(self, tmp_path, monkeypatch):
        (tmp_path / "locked.csv").write_text("rows\n")
        (tmp_path / "other.csv").write_text("more rows\n")
        real_open = os.open

        def denied(path, flags, *args, **kwargs):
            if str(path).endswith("locked.csv"):
                raise PermissionError(13, "Permission denied")
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)  # the tests run as root: chmod would not do
        scan = Inbox(tmp_path, tmp_path / "m.json").scan()
        assert names(scan.pending) == ["other.csv"]
        assert [(e.name, e.reason) for e in scan.set_aside] == [
            ("locked.csv", "unreadable: Permission denied")]

    def test_a_file_modified_within_the_settle_time_waits(self, tmp_path):
        path = tmp_path / "day.csv"
        path.write_text("rows\n")
        os.utime(path, (1_000_000, 1_000_000))
        inbox = Inbox(tmp_path, tmp_path / "m.json")
        scan = inbox.scan(settle_seconds=60, clock=lambda: 1_000_030)
        assert scan.pending == [] and "settle" in scan.waiting[0].reason
        assert names(inbox.scan(settle_seconds=60, clock=lambda: 1_000_061).pending) == [
            "day.csv"]
        assert names(inbox.scan().pending) == ["day.csv"]  # no settle time by default

    def test_a_file_changed_after_its_check_is_no_longer_the_one_checked(self, tmp_path):
        path = tmp_path / "day.csv"
        path.write_text("rows\n")
        inbox = Inbox(tmp_path, tmp_path / "m.json")
        [item] = inbox.pending()
        assert inbox.unchanged(item)
        with open(path, "a") as handle:
            handle.write("more\n")
        assert not inbox.unchanged(item)


class TestRefused:
    def test_a_symbolic_link_is_refused_and_its_target_never_opened(self, tmp_path,
                                                                    monkeypatch):
        outside = tmp_path / "outside"
        outside.mkdir()
        target = outside / "passwd"
        target.write_text("root:x:0:0:root:/root:/bin/bash\n")
        box = tmp_path / "inbox"
        box.mkdir()
        (box / "events.csv").symlink_to(target)
        (box / "day.csv").write_text("rows\n")
        opened = []
        real_os_open, real_open = os.open, builtins.open
        monkeypatch.setattr(os, "open", lambda p, *a, **k: (opened.append(str(p)),
                                                             real_os_open(p, *a, **k))[1])
        monkeypatch.setattr(builtins, "open", lambda p, *a, **k: (opened.append(str(p)),
                                                                  real_open(p, *a, **k))[1])
        scan = Inbox(box, tmp_path / "m.json").scan()
        monkeypatch.undo()
        assert names(scan.pending) == ["day.csv"]
        assert [(e.name, e.reason.split(":")[0]) for e in scan.refused] == [
            ("events.csv", "a symbolic link")]
        assert not any("passwd" in p or p.endswith("events.csv") for p in opened)
        assert "root" not in scan.refused[0].reason

    def test_a_fifo_is_refused_without_blocking(self, tmp_path):
        os.mkfifo(tmp_path / "events.csv")
        (tmp_path / "day.csv").write_text("rows\n")
        scans = []
        worker = threading.Thread(
            target=lambda: scans.append(Inbox(tmp_path, tmp_path / "m.json").scan()),
            daemon=True)
        worker.start()
        worker.join(20)
        if worker.is_alive():  # it opened the FIFO: release it so the process can end
            os.close(os.open(tmp_path / "events.csv", os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail("the scan blocked on a FIFO")
        [scan] = scans
        assert names(scan.pending) == ["day.csv"]
        assert [e.name for e in scan.refused] == ["events.csv"]
        assert "named pipe" in scan.refused[0].reason

    def test_a_directory_with_an_event_file_name_is_refused_and_others_ignored(self,
                                                                                tmp_path):
        (tmp_path / "day.csv").mkdir()
        (tmp_path / "archive").mkdir()
        scan = Inbox(tmp_path, tmp_path / "m.json").scan()
        assert [(e.name, e.reason.split(":")[0]) for e in scan.refused] == [
            ("day.csv", "a directory")]

    def test_a_link_put_in_place_after_the_listing_is_still_not_followed(self, tmp_path):
        target = tmp_path / "secret.csv"
        target.write_text("secret\n")
        (tmp_path / "box").mkdir()
        link = tmp_path / "box" / "day.csv"
        link.symlink_to(target)
        kind, reason, item = inbox_module._check(link)  # as if the lstat had seen a file
        assert (kind, item) == ("refused", None) and "symbolic link" in reason


def test_names_are_shown_without_control_characters():
    assert shown("day\x1b[31m.csv") == "day\\x1b[31m.csv"
    assert shown(os.fsdecode(b"caf\xe9.csv")) == "caf\\xe9.csv"
    assert shown("été.csv") == "été.csv"

"""The one atomic-write rule: temporary file beside the target, fsync, os.replace, fsync the
directory; the target untouched and no temporary file left on an error."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from usage_features.adapters import files
from usage_features.adapters.files import atomic_path, atomic_write


@pytest.fixture
def synced(monkeypatch):
    """The paths ``os.fsync`` was called on, in order (a file's, or a directory's)."""
    calls: list[Path] = []
    real = os.fsync

    def fsync(fd):
        calls.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    return calls


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


class TestAtomicWrite:
    def test_replaces_the_content_whole(self, tmp_path):
        target = tmp_path / "state.json"
        target.write_text("old")
        atomic_write(target, '{"new": true}')
        assert target.read_text() == '{"new": true}'
        atomic_write(target, b"\x00bytes")
        assert target.read_bytes() == b"\x00bytes"
        assert leftovers(tmp_path) == []

    def test_text_is_written_as_utf8(self, tmp_path):
        atomic_write(tmp_path / "t.yaml", "événement: ✓\n")
        assert (tmp_path / "t.yaml").read_bytes() == "événement: ✓\n".encode()

    def test_fsyncs_the_file_then_the_directory_after_the_rename(self, tmp_path, synced):
        target = tmp_path / "model.skops"
        atomic_write(target, b"data")
        assert len(synced) == 2
        assert synced[0].parent == tmp_path and synced[0].name.endswith(".tmp")
        assert synced[1] == tmp_path

    def test_the_target_is_replaced_by_a_rename_never_rewritten_in_place(self, tmp_path):
        target = tmp_path / "f"
        target.write_text("old")
        before = os.stat(target).st_ino
        atomic_write(target, "new")
        assert os.stat(target).st_ino != before  # a new file renamed over, not truncated

    def test_a_failed_rename_leaves_the_target_and_no_temporary_file(self, tmp_path, monkeypatch):
        target = tmp_path / "f"
        target.write_text("old")

        def fail(*args):
            raise OSError("disk full")

        monkeypatch.setattr(files.os, "replace", fail)
        with pytest.raises(OSError, match="disk full"):
            atomic_write(target, "new")
        assert target.read_text() == "old"
        assert leftovers(tmp_path) == []

    def test_a_new_file_gets_the_usual_mode_and_keep_mode_keeps_the_old_one(self, tmp_path):
        umask = os.umask(0o022)
        try:
            atomic_write(tmp_path / "new", "x")
            assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o644
            os.chmod(tmp_path / "new", 0o600)
            atomic_write(tmp_path / "new", "y", keep_mode=True)
            assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o600
            atomic_write(tmp_path / "new", "z")
            assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o644
        finally:
            os.umask(umask)


class TestAtomicPath:
    def test_the_file_written_at_the_path_replaces_the_target(self, tmp_path, synced):
        target = tmp_path / "scores.parquet"
        target.write_text("old")
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp != target
            tmp.write_text("new")
            assert target.read_text() == "old"  # not before the block ends
        assert target.read_text() == "new"
        assert synced == [tmp, tmp_path]
        assert leftovers(tmp_path) == []

    def test_an_exception_in_the_block_removes_the_temporary_file(self, tmp_path):
        target = tmp_path / "scores.parquet"
        target.write_text("old")

        def write_half() -> None:
            with atomic_path(target) as tmp:
                tmp.write_text("half")
                raise RuntimeError("writer failed")

        with pytest.raises(RuntimeError, match="writer failed"):
            write_half()
        assert target.read_text() == "old"
        assert leftovers(tmp_path) == []

    def test_two_writers_never_share_a_temporary_name(self, tmp_path):
        with atomic_path(tmp_path / "f") as a, atomic_path(tmp_path / "f") as b:
            assert a != b
            a.write_text("a")
            b.write_text("b")
        assert (tmp_path / "f").read_text() == "a"  # the last to finish wins, whole

"""A killed ingest never leaves part of a batch visible to a reader.

The writer is a real ingest in a child process, stopped in the middle of its commit (journal
written, some of the batch's files renamed into the log) and then killed with SIGKILL or let go
on. Readers started meanwhile see the log before the batch or with all of it, never part of it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.integration.test_ingest import NOW, row, stored
from usage_features.adapters.event_log import EventLog
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.ingestion import ingest_files
from usage_features.ingestion.ingest import event_repository

#: The child: an ingest whose commit stops after RENAMED files are in place, says so, and waits
#: for a "go" file (or for its SIGKILL).
WRITER = """
import os, sys, time
from pathlib import Path
from usage_features.adapters import event_log
from usage_features.config import RepoPaths
from usage_features.ingestion import ingest_files

source, repo, stopped, go, renamed = sys.argv[1:6]
real_replace, moved = os.replace, []

def replace(src, dst):
    real_replace(src, dst)
    if "_staging" in str(src) and str(dst).endswith(".parquet"):
        moved.append(dst)
        if len(moved) == int(renamed):
            Path(stopped).write_text("stopped")
            while not Path(go).exists():
                time.sleep(0.05)

event_log.os.replace = replace
ingest_files([Path(source)], RepoPaths(Path(repo)))
"""

DAYS = 7  # one file per day (the last is the day before NOW)
RENAMED = 3


def batch_rows(customer: str) -> list[dict]:
    return [row(day=d + 2, hour=h, customer=customer) for d in range(DAYS) for h in (8, 9)]


@pytest.fixture
def log_with_one_batch(tmp_path):
    repo = RepoPaths(tmp_path / "repo")
    first = tmp_path / "first.csv"
    pd.DataFrame([row(day=1, customer="acme")]).to_csv(first, index=False)
    ingest_files([first], repo, now=NOW)
    second = tmp_path / "second.csv"
    pd.DataFrame(batch_rows("acme")).to_csv(second, index=False)
    return repo, second


class StoppedWriter:
    """An ingest of ``source`` in a child process, stopped part way through its commit."""

    def __init__(self, source: Path, repo: RepoPaths, work: Path) -> None:
        self.stopped, self.go = work / "stopped", work / "go"
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(source), str(repo.repo), str(self.stopped),
             str(self.go), str(RENAMED)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not self.stopped.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"the writer did not stop: {self.process.stderr.read().decode()}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def finish(self) -> None:
        self.go.write_text("go")
        assert self.process.wait(timeout=120) == 0, self.process.stderr.read().decode()


def read_concurrently(repo: RepoPaths) -> tuple[threading.Thread, dict]:
    """Start readers of the log (the repository behind `events`, a plain scan) in a thread."""
    result: dict = {}

    def read():
        try:
            result["events"] = len(event_repository(repo).get_events("acme"))
            result["stored"] = len(stored(repo))
        except Exception as exc:  # pragma: no cover - reported by the test
            result["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    return reader, result


def files_on_disk(repo: RepoPaths) -> int:
    return len(list(repo.events.glob("event_date=*/*.parquet")))


class TestAKilledCommit:
    def test_a_reader_during_and_after_the_kill_sees_the_log_without_the_batch(
            self, log_with_one_batch, tmp_path):
        repo, second = log_with_one_batch
        writer = StoppedWriter(second, repo, tmp_path)
        assert files_on_disk(repo) == 1 + RENAMED  # part of the batch is in place
        reader, during = read_concurrently(repo)
        writer.kill()
        reader.join()

        assert during == {"events": 1, "stored": 1}
        # no writer has rolled it back yet: part of the batch is still on disk, and hidden
        assert files_on_disk(repo) == 1 + RENAMED
        assert len(event_repository(repo).get_events("acme")) == 1
        assert len(stored(repo)) == 1

    def test_the_next_writer_rolls_back_and_the_batch_then_arrives_whole(
            self, log_with_one_batch, tmp_path):
        repo, second = log_with_one_batch
        StoppedWriter(second, repo, tmp_path).kill()

        summary = ingest_files([second], repo, now=NOW)

        assert (summary.accepted, summary.duplicates) == (2 * DAYS, 0)
        assert len(event_repository(repo).get_events("acme")) == 1 + 2 * DAYS
        assert files_on_disk(repo) == 1 + DAYS
        assert not list((repo.events / "_staging").glob("*"))

    def test_the_events_command_sees_none_of_the_killed_batch(self, log_with_one_batch,
                                                             tmp_path):
        repo, second = log_with_one_batch
        StoppedWriter(second, repo, tmp_path).kill()
        result = CliRunner().invoke(app, ["events", "acme", "--repo", str(repo.repo)])
        assert result.exit_code == 0, result.output
        assert "acme: 1 events" in result.output


class TestACommitInProgress:
    def test_a_reader_started_mid_commit_sees_the_whole_batch_once_it_completes(
            self, log_with_one_batch, tmp_path):
        repo, second = log_with_one_batch
        writer = StoppedWriter(second, repo, tmp_path)
        reader, during = read_concurrently(repo)
        writer.finish()
        reader.join()
        assert during == {"events": 1 + 2 * DAYS, "stored": 1 + 2 * DAYS}


class TestACopiedRepoWithACrashedCommit:
    def test_recovery_in_the_copy_deletes_nothing_of_the_original(self, log_with_one_batch,
                                                                  tmp_path):
        repo, second = log_with_one_batch
        StoppedWriter(second, repo, tmp_path).kill()
        copy = RepoPaths(tmp_path / "copy")
        shutil.copytree(repo.repo, copy.repo)
        before = sorted(p.relative_to(repo.repo) for p in repo.events.rglob("*.parquet"))

        with EventLog(copy).write_lock():  # the copy's next writer rolls back the copy only
            assert len(EventLog(copy).files()) == 1

        assert sorted(p.relative_to(repo.repo) for p in repo.events.rglob("*.parquet")) == before
        assert files_on_disk(repo) == 1 + RENAMED
        assert os.path.exists(repo.events / "_staging")

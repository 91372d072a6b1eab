"""Every failure is one line and a documented status: a damaged stored file (bytes flipped in a
month file's data pages, a truncated event-log file, a model's validation reference) or a full
disk ends each command with one line naming the file and the next step, exit status 2, no
library traceback; after a full disk the repo is as it was, and the re-run completes."""

from __future__ import annotations

import errno
import hashlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from tests.factories import churn_dataset
from usage_features.adapters import files
from usage_features.adapters.feast_offline_store import point_in_time
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.ingestion import ingest as ingest_module

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A repo ingested, built, trained, refreshed (a snapshot for monitor) and materialized
    now; ``past``: a time whose month file the historical path reads."""
    work = tmp_path_factory.mktemp("failures")
    repo = copy_feature_repo(work / "repo")
    events, customers = churn_dataset(seed=5, customers=40)
    events.to_parquet(work / "events.parquet", index=False)
    customers.to_csv(work / "customers.csv", index=False)
    ok("ingest", str(work / "events.parquet"), "--repo", str(repo))
    ok("build", "--repo", str(repo))
    ok("train", "--repo", str(repo), "--customers", str(work / "customers.csv"))
    (work / "inbox").mkdir()
    ok("refresh", "--repo", str(repo), "--inbox", str(work / "inbox"))
    past = datetime.now(UTC) - timedelta(days=60)
    customer = customers.customer_id[customers.churned_at.isna()].iloc[0]
    pd.DataFrame({"customer_id": [customer], "event_timestamp": [past.isoformat()]}).to_csv(
        work / "entities.csv", index=False)
    return work, repo, customer, past, events


@pytest.fixture
def copy(built, tmp_path):
    """A fresh copy of the built repo (a repo is copyable) and what to run against it."""
    work, repo, customer, past, events = built
    target = tmp_path / "repo"
    shutil.copytree(repo, target)
    shutil.copy(work / "entities.csv", tmp_path / "entities.csv")
    return target, customer, past, events, tmp_path


def commands(repo: Path, customer: str, past: datetime, work: Path) -> dict[str, list[str]]:
    at = ["--repo", str(repo)]
    return {
        "build": ["build", *at],
        "train": ["train", *at],
        "score": ["score", customer, "--as-of", past.isoformat(), *at],
        "predict": ["predict", "--entities", str(work / "entities.csv"), "--out",
                    str(work / "scored.csv"), *at],
        "materialize": ["materialize", *at],
        "refresh": ["refresh", "--inbox", str(work / "inbox"), *at],
        "monitor": ["monitor", *at],
    }


def flip_data_pages(path: Path) -> None:
    """Flip bytes in ``path``'s data pages (between the magic number and the footer): the
    file keeps its size and its footer, its records are damaged."""
    footer = pq.ParquetFile(path).metadata.serialized_size
    data = bytearray(path.read_bytes())
    end = len(data) - 8 - footer
    for i in range(40, end, max(1, (end - 40) // 64)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def assert_one_line_naming(result, path: Path, step: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot read {path}: ") and step in lines[0], lines[0]


def snapshot(repo: Path) -> dict[str, str]:
    """Every file of the repo's data that a command reads, and its content's hash: not the
    locks, the spill, nor the build's staging folder (never read; the next build clears it)."""
    data = RepoPaths(repo).data
    return {str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(data.rglob("*")) if p.is_file()
            and not p.name.endswith(".lock") and not {".spill", ".build"} & set(p.parts)}


def month_file(repo: Path, moment: datetime) -> Path:
    return RepoPaths(repo).customer_usage / f"{moment:%Y-%m}.parquet"


@pytest.fixture
def scanning(monkeypatch):
    """Retrieval by scanning the month files, not by key index and sidecar (which read none
    of a month file's bytes and so answer right whatever its pages hold:
    tests/e2e/test_verified_storage.py)."""
    monkeypatch.setattr(point_in_time, "KEYED_ROWS_PER_ENTITY_ROW", 10**9)


class TestADamagedMonthFile:
    @pytest.mark.parametrize("command", ["train", "score", "predict"])
    def test_flipped_data_pages_end_each_command_in_one_line_naming_it(self, copy, command,
                                                                      scanning):
        repo, customer, past, _, work = copy
        month = month_file(repo, past)
        flip_data_pages(month)
        result = invoke(*commands(repo, customer, past, work)[command])
        assert_one_line_naming(result, month, "run `usage-features build")

    @pytest.mark.parametrize(("command", "status"), [("build", 0), ("refresh", 1)])
    def test_build_and_refresh_repair_it_from_the_event_log_and_say_so(self, copy, command,
                                                                     status):
        repo, customer, past, _, work = copy
        month = month_file(repo, past)
        flip_data_pages(month)
        result = invoke(*commands(repo, customer, past, work)[command])
        assert result.exit_code == status, result.output
        assert f"repaired: {month}" in " ".join(result.output.split())

    def test_post_score_answers_503_naming_it(self, copy, scanning):
        from fastapi.testclient import TestClient

        from usage_features.http.app import create_app
        from usage_features.service_layer.bootstrap import bootstrap

        repo, customer, past, _, _ = copy
        month = month_file(repo, past)
        flip_data_pages(month)
        client = TestClient(create_app(bootstrap(repo).scorer, token=None))
        response = client.post("/score", json={"customer_ids": [customer],
                                               "as_of": past.isoformat()})
        assert response.status_code == 503
        assert response.json()["detail"].startswith(f"cannot read {month}: ")


class TestATruncatedEventLogFile:
    @pytest.mark.parametrize("command", ["score", "predict", "materialize", "refresh", "train",
                                         "monitor"])
    def test_the_newest_file_cut_short_ends_each_command_in_one_line_naming_it(self, copy,
                                                                                command):
        repo, customer, past, _, work = copy
        newest = sorted(RepoPaths(repo).events.glob("event_date=*/*.parquet"))[-1]
        with open(newest, "r+b") as handle:
            handle.truncate(newest.stat().st_size // 2)
        result = invoke(*commands(repo, customer, past, work)[command])
        assert_one_line_naming(result, newest, "restore this file from a backup")

    def test_a_new_file_cut_short_before_the_build_ends_it_in_one_line(self, copy):
        repo, _, _, events, work = copy
        later = events.tail(50).assign(
            event_id=lambda f: f.event_id + "-again",
            timestamp=lambda f: f.timestamp.max() + timedelta(hours=1))
        later.to_parquet(work / "later.parquet", index=False)
        ok("ingest", str(work / "later.parquet"), "--repo", str(repo))
        new = sorted(RepoPaths(repo).events.glob("event_date=*/*.parquet"),
                     key=lambda p: p.stat().st_mtime)[-1]
        with open(new, "r+b") as handle:
            handle.truncate(300)
        result = invoke("build", "--repo", str(repo))
        assert_one_line_naming(result, new, "from a backup")


class TestAModelAdjacentFile:
    def test_a_damaged_validation_reference_ends_monitor_in_one_line(self, copy):
        repo, customer, past, _, work = copy
        reference = next(RepoPaths(repo).reports.glob("*/validation_reference.parquet"))
        flip_data_pages(reference)
        result = invoke(*commands(repo, customer, past, work)["monitor"])
        assert_one_line_naming(result, reference, "retrain")


    def test_a_3_gib_model_file_is_refused_unread_in_one_line(self, copy):
        repo, customer, _, _, work = copy
        big = work / "big.skops"
        with open(big, "wb") as handle:
            handle.truncate(3 * 2**30)
        big.with_name("big.skops.json").write_text('{"model_file_sha256": "%s"}' % ("0" * 64))
        result = invoke("score", customer, "--model", str(big), "--repo", str(repo))
        assert result.exit_code == 2 and "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "larger (3,221,225,472 bytes) than a model file" in lines[0]


class TestADamagedInput:
    def test_predict_s_entities_file_with_flipped_pages_is_one_line_naming_it(self, copy):
        repo, customer, past, _, work = copy
        entities = work / "entities.parquet"
        pd.DataFrame({"customer_id": [customer] * 500,
                      "event_timestamp": pd.Timestamp(past)}).to_parquet(entities)
        flip_data_pages(entities)
        result = invoke("predict", "--entities", str(entities), "--out",
                        str(work / "out.csv"), "--repo", str(repo))
        assert result.exit_code == 2 and "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {entities}: cannot be read")


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class TestAFullDisk:
    def new_events(self, events, work: Path) -> Path:
        later = events.tail(80).assign(
            event_id=lambda f: f.event_id + "-new",
            timestamp=lambda f: f.timestamp.max() + timedelta(minutes=30))
        later.to_parquet(work / "new.parquet", index=False)
        return work / "new.parquet"

    def assert_full_disk(self, result) -> None:
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and "Errno" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot write "), result.stderr
        assert "No space left on device; free space on that disk" in lines[0]

    def test_during_build_one_line_the_repo_as_it_was_and_the_rerun_builds(
            self, copy, monkeypatch):
        repo, _, _, events, work = copy
        ok("ingest", str(self.new_events(events, work)), "--repo", str(repo))
        before = snapshot(repo)
        with monkeypatch.context() as patch:
            patch.setattr(files, "fsync_file", full_disk)  # every file the build replaces
            result = invoke("build", "--repo", str(repo))
        self.assert_full_disk(result)
        assert str(RepoPaths(repo).data) in result.stderr  # the file being written
        assert snapshot(repo) == before
        assert "folded in 1 new event file" in ok("build", "--repo", str(repo))
        assert not (RepoPaths(repo).data / ".build").exists()

    def test_during_ingest_one_line_the_log_as_it_was_and_the_rerun_ingests(
            self, copy, monkeypatch):
        repo, _, _, events, work = copy
        new = self.new_events(events, work)
        before = snapshot(repo)
        real = ingest_module.run

        def copy_fails(con, statement, params=None):  # DuckDB's own words for a full disk
            if statement.lstrip().startswith("COPY"):
                raise duckdb.IOException(
                    'IO Error: Could not write file "' + str(RepoPaths(repo).events)
                    + '/_staging/x/part-0.parquet": No space left on device')
            return real(con, statement, params)

        with monkeypatch.context() as patch:
            patch.setattr(ingest_module, "run", copy_fails)
            result = invoke("ingest", str(new), "--repo", str(repo))
        self.assert_full_disk(result)
        assert snapshot(repo) == before
        assert "accepted" in ok("ingest", str(new), "--repo", str(repo))
        assert snapshot(repo) != before

    def test_during_refresh_one_line_and_the_rerun_completes(self, copy, monkeypatch):
        repo, customer, past, events, work = copy
        inbox = work / "inbox"
        inbox.mkdir()
        shutil.copy(self.new_events(events, work), inbox / "new.parquet")
        with monkeypatch.context() as patch:
            patch.setattr(files, "fsync_file", full_disk)
            result = invoke(*commands(repo, customer, past, work)["refresh"])
        self.assert_full_disk(result)
        ok(*commands(repo, customer, past, work)["refresh"])

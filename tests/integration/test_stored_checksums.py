"""Stored files checked against the checksums recorded when they were written.

The event log's commits record each file with the inputs its rows came from; the build records
every file it writes, checks them all before building (unread where a file's size and time are
as recorded; ``verify`` reads them all), and repairs what it finds damaged: a
damaged month file is recomputed (and only that month), a damaged sidecar rewritten, a damaged
daily table or state rebuilt from the event log, a file it never wrote removed. Every repair
ends in exactly the tables a clean build makes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import copy_feature_repo
from tests.factories import random_events
from tests.integration.test_event_log_crash import StoppedWriter, log_with_one_batch  # noqa: F401
from tests.integration.test_ingest import NOW
from usage_features.adapters import checksums, row_sidecar
from usage_features.adapters.checksums import DamagedFileError, parquet_record, sha256_file
from usage_features.adapters.event_log import MANIFESTS, EventLog
from usage_features.adapters.feature_tables import RECORDS, StoredTable, recorded_files
from usage_features.adapters.row_sidecar import sidecar_path
from usage_features.config import RepoPaths
from usage_features.features.build import build_features, check_tables
from usage_features.features.state import load_state, save_state
from usage_features.ingestion import ingest_files


def flip(path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x5A
    path.write_bytes(bytes(data))


def tables(paths: RepoPaths) -> dict[str, pd.DataFrame]:
    keys = ["customer_id", "day"]
    return {"customer_usage": pd.read_parquet(paths.customer_usage).sort_values(keys)
            .reset_index(drop=True),
            "daily": pd.read_parquet(paths.daily).sort_values(keys).reset_index(drop=True)}


def assert_same_tables(paths: RepoPaths, want: dict[str, pd.DataFrame]) -> None:
    got = tables(paths)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_dtype=False)


def clean_build(paths: RepoPaths, tmp_path) -> RepoPaths:
    """A repo of the same event log, built once from nothing."""
    clean = RepoPaths(copy_feature_repo(tmp_path / "clean"))
    for part in sorted(paths.events.rglob("*.parquet")):
        target = clean.events / part.relative_to(paths.events)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(part, target)
    build_features(clean)
    return clean


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A repo built from two ingests, and its tables."""
    work = tmp_path_factory.mktemp("built")
    paths = RepoPaths(copy_feature_repo(work / "repo"))
    events = random_events(seed=5, customers=30, days=150)
    half = events.timestamp < events.timestamp.quantile(0.7)
    for name, part in (("early", events[half]), ("late", events[~half])):
        part.to_parquet(work / f"{name}.parquet", index=False)
        ingest_files([work / f"{name}.parquet"], paths)
    build_features(paths)
    return paths, tables(paths)


@pytest.fixture
def repo(built, tmp_path):
    paths, want = built
    copy = tmp_path / "repo"
    shutil.copytree(paths.repo, copy)
    return RepoPaths(copy), want


def months(paths: RepoPaths) -> list:
    return sorted(paths.customer_usage.glob("*.parquet"))


class TestTheBuildRepairs:
    @pytest.mark.parametrize("damage", ["flipped", "truncated", "deleted"])
    def test_a_damaged_month_is_recomputed_alone(self, repo, damage):
        paths, want = repo
        month = months(paths)[2]
        if damage == "flipped":
            flip(month)
        elif damage == "truncated":
            month.write_bytes(month.read_bytes()[:-50])
        else:
            month.unlink()

        summary = build_features(paths)

        assert summary.months_rewritten == [month.stem]  # the affected month, no other
        assert [line.split(":")[0] for line in summary.repaired] == [str(month)]
        assert summary.new_event_files == 0 and summary.changed
        assert_same_tables(paths, want)
        assert build_features(paths).repaired == []

    @pytest.mark.parametrize("damage", ["flipped", "deleted"])
    def test_a_damaged_sidecar_is_rewritten_and_nothing_recomputed(self, repo, damage):
        paths, want = repo
        car = sidecar_path(months(paths)[1])
        (flip(car, 0.9) if damage == "flipped" else car.unlink())

        summary = build_features(paths)

        assert summary.months_rewritten == [] and len(summary.repaired) == 1
        assert summary.repaired[0].startswith(str(car))
        record = recorded_files(paths)[f"customer_usage/{months(paths)[1].name}"]["sidecar"]
        assert sha256_file(car) == record["sha256"]
        assert_same_tables(paths, want)

    def test_a_sidecar_of_the_earlier_format_is_rewritten_and_not_reported(self, repo):
        paths, want = repo
        month = months(paths)[1]
        car = sidecar_path(month)
        data = bytearray(car.read_bytes())  # as the earlier version wrote it, and recorded it
        data[:8] = row_sidecar._OLDER[0]
        car.write_bytes(bytes(data))
        header = 16 + int.from_bytes(data[8:16], "little")
        state = load_state(paths)
        state[RECORDS][f"customer_usage/{month.name}"]["sidecar"] = {
            "size": len(data), "sha256": sha256_file(car),
            "header": hashlib.sha256(data[:header]).hexdigest()}
        save_state(paths, state)

        summary = build_features(paths)

        assert summary.months_rewritten == [] and summary.repaired == []
        assert not row_sidecar.is_older_version(car)
        record = recorded_files(paths)[f"customer_usage/{month.name}"]["sidecar"]
        assert sha256_file(car) == record["sha256"]
        assert_same_tables(paths, want)

    @pytest.mark.parametrize("which", ["daily", "state"])
    def test_a_damaged_daily_table_or_state_rebuilds_everything(self, repo, which):
        paths, want = repo
        flip(paths.daily_files[-1] if which == "daily" else paths.build_state)

        summary = build_features(paths)

        assert summary.new_event_files == len(EventLog(paths).files())  # from the log
        assert "rebuilt every feature table" in summary.repaired[0]
        assert_same_tables(paths, want)
        assert build_features(paths).repaired == []

    def test_a_file_the_build_never_wrote_is_refused_then_removed(self, repo):
        paths, want = repo
        stray = paths.customer_usage / "1999-01.parquet"
        shutil.copy(months(paths)[0], stray)
        table = StoredTable(paths, paths.customer_usage)
        with pytest.raises(DamagedFileError, match="not written by the build"):
            table.files(recorded_files(paths))

        summary = build_features(paths)

        assert not stray.exists() and summary.repaired == [f"{stray}: not written by the "
                                                           "build; removed"]
        assert_same_tables(paths, want)

    def test_a_damaged_profile_is_rewritten(self, repo):
        paths, _ = repo
        before = paths.customer_profile.read_bytes()
        flip(paths.customer_profile)

        summary = build_features(paths)

        assert summary.repaired[0].startswith(str(paths.customer_profile))
        assert pd.read_parquet(paths.customer_profile).equals(
            pd.read_parquet(pd.io.common.BytesIO(before)))

    def test_damage_and_new_events_in_one_build_equal_a_clean_build(self, repo, tmp_path):
        paths, _ = repo
        month = months(paths)[3]
        flip(month)
        more = random_events(seed=6, customers=30, days=150)
        more = more[more.timestamp > more.timestamp.quantile(0.5)].assign(
            event_id=lambda f: "more-" + f.event_id)
        more.to_parquet(tmp_path / "more.parquet", index=False)
        ingest_files([tmp_path / "more.parquet"], paths)

        summary = build_features(paths)

        assert str(month) in summary.repaired[0] and summary.new_event_files > 0
        assert_same_tables(paths, tables(clean_build(paths, tmp_path)))

    def test_a_day_s_events_rewrite_the_daily_table_of_their_month_alone(self, repo, tmp_path):
        paths, _ = repo
        stamps = {f.name: f.stat().st_mtime_ns for f in paths.daily_files}
        events = random_events(seed=7, customers=30, days=150)
        day = events.timestamp.dt.floor("D").iloc[len(events) // 2]  # a day mid-history
        late = events[events.timestamp.dt.floor("D") == day].assign(
            event_id=lambda f: "late-" + f.event_id)
        late.to_parquet(tmp_path / "late.parquet", index=False)
        ingest_files([tmp_path / "late.parquet"], paths)

        build_features(paths)

        changed = {f.name for f in paths.daily_files if f.stat().st_mtime_ns != stamps[f.name]}
        assert set(stamps) == {f.name for f in paths.daily_files}
        assert changed == {f"{day:%Y-%m}.parquet"}
        assert_same_tables(paths, tables(clean_build(paths, tmp_path)))

    @pytest.mark.parametrize("recorded", ["as written", "damaged"])
    def test_a_one_file_daily_table_of_an_earlier_version_is_split_by_month(self, repo,
                                                                            recorded):
        paths, want = repo
        months_before = {f.name: pq.read_table(f) for f in paths.daily_files}
        single = paths.single_file_daily  # the daily table as the version before wrote it
        pq.write_table(pa.concat_tables(months_before.values()), single)
        state = load_state(paths)
        for f in paths.daily_files:
            del state[RECORDS][f"daily_aggregates/{f.name}"]
            f.unlink()
        state[RECORDS]["daily_aggregates.parquet"] = parquet_record(single)
        save_state(paths, state)
        if recorded == "damaged":
            flip(single)

        summary = build_features(paths)

        assert not single.exists() and "daily_aggregates.parquet" not in recorded_files(paths)
        assert {f.name for f in paths.daily_files} == set(months_before)
        if recorded == "damaged":
            assert summary.repaired[0].startswith(f"{single}: ")
        else:
            assert summary.repaired == [] and summary.months_rewritten == []
            for f in paths.daily_files:
                assert pq.read_table(f).equals(months_before[f.name])
        assert check_tables(paths, load_state(paths)).found == []
        assert_same_tables(paths, want)

    def test_every_file_of_the_tables_is_recorded_and_the_state_checks_itself(self, repo):
        paths, _ = repo
        records = recorded_files(paths)
        assert paths.daily_files and set(records) == {
            *(f"customer_usage/{m.name}" for m in months(paths)),
            *(f"daily_aggregates/{m.name}" for m in paths.daily_files),
            "customer_profile.parquet"}
        assert all("sidecar" in r for k, r in records.items() if k.startswith("customer_"
                                                                              "usage/"))
        text = paths.build_state.read_text()
        paths.build_state.write_text(text.replace('"event_files"', '"event_filez"'))
        with pytest.raises(DamagedFileError, match=r"_build_state\.json"):
            load_state(paths)


def age(paths: RepoPaths, seconds: int = 3600) -> None:
    """Every file of the feature tables last modified ``seconds`` before now."""
    old = time.time_ns() - seconds * 10**9
    for path in paths.features.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(old, old))


@pytest.fixture
def reads(monkeypatch) -> list[Path]:
    """The files whose SHA-256 is computed from now on."""
    read = []
    real = checksums.sha256_file
    monkeypatch.setattr(checksums, "sha256_file", lambda path: read.append(Path(path))
                        or real(path))
    return read


class TestTheBuildReadsOnlyWhatChanged:
    """A day's build does not read the whole history's files: one whose size and time are
    as recorded is taken as written; ``verify`` reads them all."""

    def test_an_unchanged_file_is_read_once_then_not_again(self, repo, reads):
        paths, want = repo
        age(paths)
        build_features(paths)  # recorded without their times: each read, its time recorded
        table_files = [p for p in paths.features.rglob("*") if p.is_file()
                       and not p.name.startswith("_build_state")]
        assert set(reads) >= {p for p in table_files if not p.name.endswith(".lock")}
        reads.clear()
        assert build_features(paths).repaired == []
        assert [p for p in reads if paths.features in p.parents] == []
        assert_same_tables(paths, want)

    def test_a_file_written_moments_ago_is_read_again(self, repo, reads):
        paths, _ = repo
        age(paths, 0)  # modified just now
        build_features(paths)  # too recent to trust their times: read, times not recorded
        reads.clear()
        build_features(paths)
        assert set(months(paths)) <= set(reads)

    def test_a_change_that_keeps_the_file_s_time_is_found_by_verify(self, repo, reads):
        paths, _ = repo
        age(paths)
        build_features(paths)
        month = months(paths)[1]
        stat = month.stat()
        flip(month)
        os.utime(month, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert build_features(paths).repaired == []  # by time: not seen
        found = check_tables(paths, load_state(paths)).found  # verify's check reads it
        assert [(path, "SHA-256" in problem) for path, problem, _ in found] == [(month, True)]
        os.utime(month)  # modified now: the next build reads and repairs it
        assert [line.split(":")[0] for line in build_features(paths).repaired] == [str(month)]


class TestTheEventLogRecordsItsFiles:
    def test_each_file_names_the_inputs_its_rows_came_from(self, tmp_path):
        paths = RepoPaths(copy_feature_repo(tmp_path / "repo"))
        events = random_events(seed=7, customers=5, days=6)
        first_day = events.timestamp.dt.date == events.timestamp.dt.date.min()
        events[first_day].to_parquet(tmp_path / "a.parquet", index=False)
        events[~first_day].to_parquet(tmp_path / "b.parquet", index=False)
        ingest_files([tmp_path / "a.parquet", tmp_path / "b.parquet"], paths)

        records, damaged = EventLog(paths).records()

        assert damaged == [] and set(records) == {
            str(p.relative_to(paths.events)) for p in EventLog(paths).files()}
        inputs = {name: [s["path"] for s in r["sources"]] for name, r in records.items()}
        day = f"event_date={events.timestamp.dt.date.min()}"
        assert all(v == [str(tmp_path / "a.parquet")] for k, v in inputs.items()
                   if k.startswith(day))
        assert all(v == [str(tmp_path / "b.parquet")] for k, v in inputs.items()
                   if not k.startswith(day))
        assert EventLog(paths).problems() == ([], 0)

    def test_a_damaged_file_is_reported_with_its_input_and_refused_by_a_build(self, repo):
        paths, _ = repo
        log = EventLog(paths)
        damaged = log.files()[len(log.files()) // 2]
        flip(damaged)

        (problem,), unrecorded = log.problems()

        assert unrecorded == 0 and problem.path == damaged
        message = str(problem)
        assert "cannot be rebuilt from itself" in message and "early.parquet" in message
        assert "\n" not in message
        paths.build_state.unlink()  # a full rebuild reads every file
        with pytest.raises(DamagedFileError, match=r"early\.parquet"):
            build_features(paths)

    def test_a_deleted_file_is_reported_missing(self, repo):
        paths, _ = repo
        log = EventLog(paths)
        gone = log.files()[0]
        gone.unlink()
        (problem,), _ = log.problems()
        assert problem.path == gone and "missing" in problem.problem

    def test_files_without_a_manifest_are_counted_then_recorded_on_request(self, repo):
        paths, _ = repo
        log = EventLog(paths)
        manifests = sorted((paths.events / MANIFESTS).glob("*.json"))
        manifests[0].unlink()  # as a log ingested before manifests
        damaged = manifests[1]
        damaged.write_text(damaged.read_text().replace('"size"', '"sise"'))

        found, unrecorded = log.problems()
        assert [p.path for p in found] == [damaged]
        assert unrecorded == len(log.files())

        assert log.record_unrecorded() == len(log.files())
        assert log.problems() == ([], 0)
        assert damaged.with_name(damaged.name + ".damaged").exists()

    def test_a_killed_commit_s_manifest_is_ignored_then_rolled_back(
            self, log_with_one_batch, tmp_path):  # noqa: F811
        paths, second = log_with_one_batch
        StoppedWriter(second, paths, tmp_path).kill()
        log = EventLog(paths)
        assert len(list((paths.events / MANIFESTS).glob("*.json"))) == 2
        assert log.problems() == ([], 0)  # its files and its manifest left out alike

        ingest_files([second], paths, now=NOW)  # the next writer rolls it back first

        records, _ = log.records()
        assert len(list((paths.events / MANIFESTS).glob("*.json"))) == 2
        assert set(records) == {str(p.relative_to(paths.events)) for p in log.files()}
        assert log.problems() == ([], 0)

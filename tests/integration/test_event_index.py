"""Ingest finds stored ids through the event log's id index: wherever and whenever the first copy
was stored (another month, another day, another timestamp), a known id with other values is
rejected and a verbatim copy dropped; hash collisions are told apart on the id; a missing,
damaged or stale index is rebuilt; old log files are not read unless an id of theirs comes
again."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from usage_features.adapters import event_index, event_log
from usage_features.adapters.duckdb_connection import parquet_list
from usage_features.adapters.event_index import CATALOGUE, INDEX_DIR, EventIdIndex
from usage_features.adapters.event_log import EventLog, rows_sql
from usage_features.config import RepoPaths
from usage_features.ingestion import ingest, ingest_files

NOW = datetime(2026, 3, 10, tzinfo=UTC)


def event(timestamp: str, customer="c1", event_type="login", score="0.5", event_id=None):
    return {"event_id": event_id or str(uuid.uuid4()), "customer_id": customer,
            "timestamp": timestamp, "event_type": event_type,
            "feature_adoption_score": score}


def write(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def stored(repo: RepoPaths) -> pd.DataFrame:
    with EventLog(repo).snapshot() as files:
        return duckdb.sql(f"SELECT * FROM read_parquet({parquet_list(files)}, "
                          "hive_partitioning = false) ORDER BY event_id").df()


def counts(summary) -> tuple[int, int, int]:
    return summary.accepted, summary.duplicates, summary.rejected_by_reason.get(
        "conflicting_event_id", 0)


@pytest.fixture
def repo(tmp_path) -> RepoPaths:
    return RepoPaths(tmp_path / "repo")


@pytest.fixture
def history(tmp_path, repo) -> dict[str, dict]:
    """January and February in separate ingests (several days, customers, batches each)."""
    rows = {"january": event("2026-01-05T08:00:00Z", customer="c7", score="0.25")}
    first = [rows["january"], *(event(f"2026-01-{d:02d}T10:00:00Z", customer=f"c{d}")
                                for d in range(1, 29))]
    rows["february"] = event("2026-02-14T23:30:00Z", customer="c9", event_type="report_export")
    second = [rows["february"], *(event(f"2026-02-{d:02d}T11:00:00Z") for d in range(1, 28))]
    ingest_files([write(tmp_path / "january.csv", first)], repo, now=NOW)
    ingest_files([write(tmp_path / "february.csv", second)], repo, now=NOW)
    return rows


class TestAReSentOldEvent:
    def test_from_another_month_and_day_with_other_values_is_rejected(self, tmp_path, repo,
                                                                       history):
        old = history["january"]
        resent = [{**old, "timestamp": "2026-03-09T09:00:00Z"},  # another month, day, time
                  {**history["february"], "feature_adoption_score": "0.75"},
                  event("2026-03-09T10:00:00Z")]
        summary = ingest_files([write(tmp_path / "march.csv", resent)], repo, now=NOW)

        assert counts(summary) == (1, 0, 2)
        log = stored(repo).set_index("event_id")
        assert log.loc[old["event_id"], "timestamp"] == pd.Timestamp(old["timestamp"])
        assert log.loc[history["february"]["event_id"], "feature_adoption_score"] == 0.5

    def test_verbatim_or_in_another_case_and_offset_is_a_duplicate(self, tmp_path, repo,
                                                                  history):
        old = history["february"]
        same = {**old, "event_id": old["event_id"].upper(),
                "timestamp": "2026-02-15T00:30:00+01:00"}
        summary = ingest_files([write(tmp_path / "again.csv", [old, same, history["january"]])],
                               repo, now=NOW)
        assert counts(summary) == (0, 3, 0)
        assert len(stored(repo)) == 57


    # streamed: DuckDB warns when a cursor's result is copied whole before its Arrow reader
    @pytest.mark.filterwarnings("error::UserWarning")
    def test_an_input_looked_up_a_few_ids_at_a_time_finds_every_stored_one(
            self, tmp_path, repo, history, monkeypatch):
        """A large input's hashes are looked up in parts, never gathered whole (10^8 ran out
        of memory); a match in any part is found."""
        monkeypatch.setattr(ingest, "LOOKUP_BATCH", 2)
        resent = [event("2026-03-09T10:00:00Z"), dict(history["february"]),
                  event("2026-03-09T11:00:00Z"), event("2026-03-09T12:00:00Z"),
                  {**history["january"], "customer_id": "c8"}]
        summary = ingest_files([write(tmp_path / "march.csv", resent)], repo, now=NOW)
        assert counts(summary) == (3, 1, 1)


class TestHashCollisions:
    @pytest.fixture
    def tiny_hash(self, monkeypatch):
        """Four hash values for every id, and blocks of 4 entries: equal hashes straddle
        blocks, and nearly every lookup finds rows of other ids (of a file, read by range
        beyond 2 of them)."""
        monkeypatch.setattr(event_index, "HASH_SQL", "(hash({}) % 4)")
        monkeypatch.setattr(event_index, "BLOCK", 4)
        monkeypatch.setattr(event_log, "ROWS_BY_NUMBER", 2)

    def test_colliding_ids_are_told_apart_on_the_id(self, tmp_path, repo, tiny_hash, history):
        old = history["january"]
        batch = [{**old, "customer_id": "c8"}, dict(history["february"]),
                 *(event(f"2026-03-0{d}T12:00:00Z") for d in range(1, 9))]
        summary = ingest_files([write(tmp_path / "march.csv", batch)], repo, now=NOW)

        assert counts(summary) == (8, 1, 1)
        assert stored(repo).event_id.is_unique and len(stored(repo)) == 65
        catalogue = EventIdIndex(repo.events)
        with duckdb.connect() as con:
            catalogue.load(con)
        hashes = np.concatenate([np.load(repo.events / INDEX_DIR / f"{run.name}.npy")[0]
                                 for run in catalogue.runs])
        assert set(hashes) <= {0, 1, 2, 3} and len(hashes) == 65

    def test_the_same_ingests_give_the_same_log_as_with_the_real_hash(self, tmp_path,
                                                                        monkeypatch):
        days = [[event(f"2026-0{m}-{d:02d}T12:00:00Z", customer=f"c{d % 5}")
                 for d in range(1, 20)] for m in (1, 2)]
        resent = [{**days[0][3], "feature_adoption_score": "0.1"}, days[1][4],
                  event("2026-03-01T00:00:00Z")]
        results = {}
        for name in ("real", "tiny"):
            if name == "tiny":
                monkeypatch.setattr(event_index, "HASH_SQL", "(hash({}) % 2)")
                monkeypatch.setattr(event_index, "BLOCK", 3)
            repo = RepoPaths(tmp_path / name)
            summaries = [counts(ingest_files([write(tmp_path / f"{name}{i}.csv", rows)], repo,
                                             now=NOW))
                         for i, rows in enumerate([*days, resent])]
            results[name] = (summaries, stored(repo))
        assert results["tiny"][0] == results["real"][0] == [(19, 0, 0), (19, 0, 0), (1, 1, 1)]
        pd.testing.assert_frame_equal(results["tiny"][1], results["real"][1])


def flip_entry_of(repo: RepoPaths, event_id: str) -> None:
    """Change a byte of the index entry of ``event_id`` (its place's file number)."""
    (h,), = duckdb.sql(f"SELECT {event_index.HASH_SQL.format(repr(event_id))}").fetchall()
    for path in index_files(repo):
        hashes, _ = np.load(path)
        (at,) = np.flatnonzero(hashes == h) if h in hashes else (None,)
        if at is not None:
            data = bytearray(path.read_bytes())
            data[len(data) - 8 * len(hashes) + 8 * at + 4] ^= 0x01
            path.write_bytes(bytes(data))
            return
    raise AssertionError("not indexed")


def index_files(repo: RepoPaths) -> list[Path]:
    return sorted((repo.events / INDEX_DIR).glob("run-*.npy"))


class TestARebuiltIndex:
    @pytest.mark.parametrize("damage", ["deleted", "run changed", "catalogue changed",
                                        "run missing", "other hash"])
    def test_a_missing_or_damaged_index_is_rebuilt_and_still_finds_old_ids(
            self, tmp_path, repo, history, damage, monkeypatch):
        directory = repo.events / INDEX_DIR
        if damage == "deleted":  # (also: a repo ingested before the index existed)
            for path in directory.iterdir():
                path.unlink()
            directory.rmdir()
        elif damage == "run changed":  # the byte of the entry the lookup will read
            flip_entry_of(repo, history["january"]["event_id"])
        elif damage == "catalogue changed":
            catalogue = directory / CATALOGUE
            catalogue.write_text(catalogue.read_text().replace('"entries": ', '"entries": 1'))
        elif damage == "run missing":
            index_files(repo)[0].unlink()
        else:
            monkeypatch.setattr(event_index, "HASH_SQL", "(hash({}) + 1)")

        resent = [{**history["january"], "feature_adoption_score": "0.3"},
                  history["february"]]
        summary = ingest_files([write(tmp_path / "resent.csv", resent)], repo, now=NOW)

        assert counts(summary) == (0, 1, 1)
        with duckdb.connect() as con:
            problems, lacking = EventIdIndex(repo.events).problems(con, EventLog(repo).files())
        assert (problems, lacking) == ([], 0)

    def test_a_log_file_moved_out_is_dropped_from_the_index(self, tmp_path, repo, history):
        january = [p for p in EventLog(repo).files() if "2026-01-05" in str(p)]
        os.replace(january[0], tmp_path / "moved.parquet")
        summary = ingest_files([write(tmp_path / "resent.csv", [history["january"]])], repo,
                               now=NOW)
        assert counts(summary) == (1, 0, 0)  # the log no longer holds it: new again

    def test_an_ingest_stopped_after_its_commit_is_indexed_by_the_next(self, tmp_path, repo,
                                                                       history, monkeypatch):
        real_sync, calls = EventIdIndex.sync, []

        def stop_after_commit(self, con, files):
            calls.append(len(files))
            if len(calls) == 2:
                raise KeyboardInterrupt
            real_sync(self, con, files)

        monkeypatch.setattr(EventIdIndex, "sync", stop_after_commit)
        march = [event("2026-03-02T10:00:00Z"), event("2026-03-03T10:00:00Z")]
        with pytest.raises(KeyboardInterrupt):
            ingest_files([write(tmp_path / "march.csv", march)], repo, now=NOW)
        monkeypatch.undo()
        with duckdb.connect() as con:
            assert EventIdIndex(repo.events).problems(con, EventLog(repo).files()) == ([], 2)

        again = ingest_files([write(tmp_path / "again.csv", march)], repo, now=NOW)
        assert counts(again) == (0, 2, 0)


class TestCost:
    def test_new_ids_read_no_old_log_file(self, tmp_path, repo, history):
        """The old files are overwritten with garbage of the same size: an ingest of new ids
        still succeeds, so it read none of them (only their sizes)."""
        old = EventLog(repo).files()
        for path in old:
            path.write_bytes(b"\0" * path.stat().st_size)
        new = [event(f"2026-03-0{d}T10:00:00Z") for d in range(1, 6)]
        summary = ingest_files([write(tmp_path / "march.csv", new)], repo, now=NOW)
        assert counts(summary) == (5, 0, 0)

    def test_an_old_id_reads_only_its_own_file(self, tmp_path, repo, history, monkeypatch):
        mine = [p for p in EventLog(repo).files() if "2026-02-14" in str(p)]
        for path in EventLog(repo).files():
            if path not in mine:
                path.write_bytes(b"\0" * path.stat().st_size)
        read: list[str] = []

        def spy(root, rows):
            read.extend(sorted(rows))
            return rows_sql(root, rows)

        monkeypatch.setattr("usage_features.ingestion.ingest.rows_sql", spy)
        summary = ingest_files([write(tmp_path / "again.csv", [history["february"]])], repo,
                               now=NOW)
        assert counts(summary) == (0, 1, 0)
        assert read == [str(mine[0].relative_to(repo.events))]

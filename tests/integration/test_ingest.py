"""Ingestion into the Parquet event log: validation, quarantine, dedup, atomicity, locking."""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from usage_features.adapters.duckdb_connection import parquet_list
from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.ingestion import ingest, ingest_files
from usage_features.ingestion.readers import InputError
from usage_features.schema import EVENT_COLUMNS

NOW = datetime(2026, 3, 10, tzinfo=UTC)


def row(day=1, hour=10, customer="c1", event_type="login", score="0.5", event_id=None):
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "customer_id": customer,
        "timestamp": f"2026-03-{day:02d}T{hour:02d}:00:00Z",
        "event_type": event_type,
        "feature_adoption_score": score,
    }


def write(path: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        frame.to_parquet(path, index=False)
    return path


def stored(repo: RepoPaths) -> pd.DataFrame:
    with EventLog(repo).snapshot() as files:
        if not files:
            return pd.DataFrame(columns=list(EVENT_COLUMNS))
        return duckdb.sql(f"SELECT * FROM read_parquet({parquet_list(files)}, "
                          "hive_partitioning = false) ORDER BY event_id").df()


def quarantined(repo: RepoPaths) -> pd.DataFrame:
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{repo.quarantine}/*.parquet') ORDER BY source_row"
    ).df()


@pytest.fixture
def repo(tmp_path) -> RepoPaths:
    return RepoPaths(tmp_path / "repo")


@pytest.fixture
def mixed_rows() -> list[dict]:
    valid = [row(day=1), row(day=2, event_type="monitoring_run"), row(day=3, customer="c2")]
    return [
        valid[0],
        valid[1],
        row(score="1.7"),
        valid[2],
        dict(valid[0]),  # exact duplicate of an earlier row
        {**valid[1], "feature_adoption_score": "0.9"},  # same id, other values
        row(event_id="   "),
    ]


class TestIngestingAMixedFile:
    def test_counts_add_up_and_only_valid_rows_are_stored(self, tmp_path, repo, mixed_rows):
        summary = ingest_files([write(tmp_path / "in.csv", mixed_rows)], repo, now=NOW)

        assert ((summary.read, summary.accepted, summary.rejected, summary.duplicates)
                == (7, 3, 3, 1))
        assert summary.read == summary.accepted + summary.rejected + summary.duplicates
        assert sorted(stored(repo).event_id) == sorted(
            r["event_id"] for r in [*mixed_rows[:2], mixed_rows[3]])

    def test_rejected_rows_keep_their_original_values_and_reason(self, tmp_path, repo, mixed_rows):
        ingest_files([write(tmp_path / "in.csv", mixed_rows)], repo, now=NOW)

        rejected = quarantined(repo)
        assert list(rejected.source_row) == [3, 6, 7]
        assert list(rejected.reason) == [
            "score_out_of_range", "conflicting_event_id", "invalid_event_id"]
        assert rejected.feature_adoption_score.iloc[0] == "1.7"
        assert rejected.event_id.iloc[2] == "   "
        assert rejected.source_file.str.endswith("in.csv").all()

    def test_reasons_are_counted(self, tmp_path, repo, mixed_rows):
        summary = ingest_files([write(tmp_path / "in.csv", mixed_rows)], repo, now=NOW)
        assert summary.rejected_by_reason == {
            "score_out_of_range": 1, "conflicting_event_id": 1, "invalid_event_id": 1}

    def test_the_log_is_partitioned_by_utc_event_date(self, tmp_path, repo):
        late_evening_in_new_york = {**row(day=1), "timestamp": "2026-03-01T22:00:00-05:00"}
        ingest_files([write(tmp_path / "in.csv", [late_evening_in_new_york])], repo, now=NOW)
        (path,) = EventLog(repo).files()
        assert path.parent.name == "event_date=2026-03-02"


class TestReingesting:
    def test_reingesting_a_file_adds_nothing_and_changes_no_file(self, tmp_path, repo, mixed_rows):
        source = write(tmp_path / "in.csv", mixed_rows)
        ingest_files([source], repo, now=NOW)
        before = {p: p.read_bytes() for p in repo.data.rglob("*.parquet")}

        again = ingest_files([source], repo, now=NOW)

        assert (again.accepted, again.rejected, again.duplicates) == (0, 3, 4)
        assert {p: p.read_bytes() for p in repo.data.rglob("*.parquet")} == before

    def test_a_conflicting_event_is_rejected_and_the_stored_one_kept(self, tmp_path, repo):
        original = row(score="0.5")
        ingest_files([write(tmp_path / "a.csv", [original])], repo, now=NOW)

        summary = ingest_files(
            [write(tmp_path / "b.csv", [{**original, "feature_adoption_score": "0.6"}])],
            repo, now=NOW)

        assert (summary.accepted, summary.rejected) == (0, 1)
        assert summary.rejected_by_reason == {"conflicting_event_id": 1}
        assert stored(repo).feature_adoption_score.tolist() == [0.5]

    def test_an_id_in_another_case_or_timezone_is_the_same_event(self, tmp_path, repo):
        original = row(hour=10)
        ingest_files([write(tmp_path / "a.csv", [original])], repo, now=NOW)
        same = {**original, "event_id": original["event_id"].upper(),
                "timestamp": "2026-03-01T11:00:00+01:00"}
        summary = ingest_files([write(tmp_path / "b.csv", [same])], repo, now=NOW)
        assert (summary.accepted, summary.duplicates) == (0, 1)


class TestInputFormats:
    @pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
    def test_every_format_gives_the_same_log(self, tmp_path, suffix, mixed_rows):
        reference = RepoPaths(tmp_path / "reference")
        ingest_files([write(tmp_path / "ref.csv", mixed_rows)], reference, now=NOW)
        repo = RepoPaths(tmp_path / suffix)

        summary = ingest_files([write(tmp_path / f"in{suffix}", mixed_rows)], repo, now=NOW)

        assert (summary.accepted, summary.rejected, summary.duplicates) == (3, 3, 1)
        pd.testing.assert_frame_equal(stored(repo), stored(reference))
        assert quarantined(repo).source_row.tolist() == [3, 6, 7]

    @pytest.mark.parametrize("suffix", [".csv", ".parquet"])
    def test_progress_is_reported_for_every_row(self, tmp_path, suffix, repo):
        source = write(tmp_path / f"in{suffix}", [row(day=d % 9 + 1) for d in range(3000)])
        seen = []
        summary = ingest_files([source], repo, now=NOW, on_rows=seen.append)
        assert sum(seen) == summary.read == 3000

    def test_columns_may_come_in_any_order(self, tmp_path, repo):
        rows = [dict(reversed(list(row().items())))]
        assert ingest_files([write(tmp_path / "in.csv", rows)], repo, now=NOW).accepted == 1

    def test_typed_parquet_rejects_naive_timestamps(self, tmp_path, repo):
        base = pd.DataFrame([row(day=1), row(day=2)]).drop(columns="timestamp")
        aware = base.assign(timestamp=pd.to_datetime(["2026-03-01", "2026-03-02"], utc=True),
                            feature_adoption_score=[0.5, 0.25])
        naive = aware.assign(event_id=[str(uuid.uuid4()) for _ in range(2)],
                             timestamp=aware.timestamp.dt.tz_localize(None))
        aware.to_parquet(tmp_path / "aware.parquet")
        naive.to_parquet(tmp_path / "naive.parquet")

        summary = ingest_files([tmp_path / "aware.parquet", tmp_path / "naive.parquet"], repo,
                               now=NOW)

        assert (summary.accepted, summary.rejected) == (2, 2)
        assert summary.rejected_by_reason == {"naive_timestamp": 2}
        assert stored(repo).feature_adoption_score.sort_values().tolist() == [0.25, 0.5]

    def test_a_missing_column_is_named_and_nothing_is_written(self, tmp_path, repo):
        good = write(tmp_path / "good.csv", [row()])
        bad = write(tmp_path / "bad.csv", [{k: v for k, v in row().items() if k != "event_type"}])
        with pytest.raises(InputError, match=r"missing required column.*event_type"):
            ingest_files([good, bad], repo, now=NOW)
        assert not repo.events.exists() or EventLog(repo).is_empty()

    def test_extra_columns_are_ignored_with_a_warning(self, tmp_path, repo):
        source = write(tmp_path / "in.csv", [{**row(), "browser": "firefox"}])
        with pytest.warns(UserWarning, match="ignoring extra column.*browser"):
            summary = ingest_files([source], repo, now=NOW)
        assert summary.accepted == 1
        assert list(stored(repo).columns) == list(EVENT_COLUMNS)

    def test_an_unsupported_file_type_is_an_error(self, tmp_path, repo):
        (tmp_path / "in.xlsx").write_text("x")
        with pytest.raises(InputError, match="unsupported file type"):
            ingest_files([tmp_path / "in.xlsx"], repo, now=NOW)


class TestDurability:
    def test_a_crash_mid_commit_is_rolled_back_by_the_next_writer(self, tmp_path, repo,
                                                                   monkeypatch):
        ingest_files([write(tmp_path / "a.csv", [row(day=1)])], repo, now=NOW)
        before = sorted(EventLog(repo).files())
        real_replace, calls = os.replace, []

        def crash_on_second_move(src, dst):
            calls.append(dst)
            if len(calls) == 2:
                raise OSError("disk gone")
            real_replace(src, dst)

        monkeypatch.setattr("usage_features.adapters.event_log.os.replace", crash_on_second_move)
        second = write(tmp_path / "b.csv", [row(day=d) for d in (2, 3, 4)])
        with pytest.raises(OSError, match="disk gone"):
            ingest_files([second], repo, now=NOW)
        monkeypatch.undo()

        with EventLog(repo).write_lock():
            assert sorted(EventLog(repo).files()) == before
        assert ingest_files([second], repo, now=NOW).accepted == 3
        assert len(stored(repo)) == 4

    def test_concurrent_ingests_of_the_same_file_store_each_event_once(self, tmp_path, repo):
        source = write(tmp_path / "in.parquet", [row(day=d % 9 + 1) for d in range(2000)])
        results, errors = [], []

        def run():
            try:
                results.append(ingest_files([source], repo, now=NOW))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert sorted(r.accepted for r in results) == [0, 0, 0, 2000]
        assert stored(repo).event_id.is_unique and len(stored(repo)) == 2000


class TestCommittingInBatchesOfDays:
    """The commit sorts and writes a few whole days at a time (``COMMIT_ROWS``): the log it
    writes does not depend on the batch size."""

    @staticmethod
    def events() -> list[dict]:
        rng = random.Random(7)
        rows = [row(day=rng.randint(1, 9), hour=rng.randint(0, 23),
                    customer=f"c{rng.randint(1, 30)}") for _ in range(400)]
        rows += [dict(rows[5]), {**rows[9], "feature_adoption_score": "0.9"}]
        rng.shuffle(rows)
        return rows

    @staticmethod
    def log_files(repo: RepoPaths) -> dict[str, pd.DataFrame]:
        files = EventLog(repo).files()
        assert len(files) == len({f.parent for f in files}), "one file per day"
        return {f.parent.name: pd.read_parquet(f) for f in files}

    def test_the_log_is_the_same_whatever_the_batch_size(self, tmp_path, monkeypatch):
        source = write(tmp_path / "in.parquet", self.events())
        whole = ingest_files([source], RepoPaths(tmp_path / "whole"), now=NOW)
        ranges = []
        real = ingest._day_ranges
        monkeypatch.setattr(ingest, "_day_ranges",
                            lambda days, limit: ranges.extend(real(days, limit)) or ranges)
        monkeypatch.setattr(ingest, "COMMIT_ROWS", 60)

        batched = ingest_files([source], RepoPaths(tmp_path / "batched"), now=NOW)

        assert len(ranges) >= 6
        counts = ("read", "accepted", "rejected", "duplicates", "rejected_by_reason")
        assert [getattr(batched, c) for c in counts] == [getattr(whole, c) for c in counts]
        assert (batched.accepted, batched.duplicates, batched.rejected) == (400, 1, 1)
        expected = self.log_files(RepoPaths(tmp_path / "whole"))
        got = self.log_files(RepoPaths(tmp_path / "batched"))
        assert list(got) == list(expected) and len(got) == 9
        for day, frame in got.items():
            assert frame.customer_id.is_monotonic_increasing, day
            key = list(EVENT_COLUMNS)
            pd.testing.assert_frame_equal(frame.sort_values(key).reset_index(drop=True),
                                          expected[day].sort_values(key).reset_index(drop=True))

    def test_days_are_batched_in_order_up_to_the_limit(self):
        days = [(date(2026, 3, d), n) for d, n in [(1, 5), (2, 5), (3, 20), (4, 1), (5, 9)]]
        assert ingest._day_ranges(days, 10) == [
            (date(2026, 3, 1), date(2026, 3, 2)), (date(2026, 3, 3), date(2026, 3, 3)),
            (date(2026, 3, 4), date(2026, 3, 5))]

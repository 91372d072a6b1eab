"""Ingesting awkward inputs: malformed rows, broken files, hostile names, ids that look numeric."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from tests.integration.test_ingest import stored as stored_events
from usage_features.adapters.event_log import EventLog
from usage_features.config import RepoPaths
from usage_features.ingestion import ingest_files
from usage_features.ingestion.readers import InputError

NOW = datetime(2026, 3, 10, tzinfo=UTC)
HEADER = "event_id,customer_id,timestamp,event_type,feature_adoption_score"


def line(customer="c1", day=1, event_type="login", score="0.5"):
    return f"{uuid.uuid4()},{customer},2026-03-0{day}T10:00:00Z,{event_type},{score}"


def event(customer="c1", day=1, **overrides):
    return {"event_id": str(uuid.uuid4()), "customer_id": customer,
            "timestamp": f"2026-03-0{day}T10:00:00Z", "event_type": "login",
            "feature_adoption_score": 0.5, **overrides}


def stored(repo: RepoPaths) -> pd.DataFrame:
    stored = stored_events(repo)
    return stored.sort_values("timestamp", ignore_index=True) if len(stored) else pd.DataFrame(
        columns=["customer_id"])


def quarantined(repo: RepoPaths) -> pd.DataFrame:
    files = sorted(str(p) for p in repo.quarantine.glob("*.parquet"))
    return duckdb.execute("SELECT * FROM read_parquet(?) ORDER BY source_row", [files]).df()


@pytest.fixture
def repo(tmp_path) -> RepoPaths:
    return RepoPaths(tmp_path / "repo")


class TestMalformedRows:
    @pytest.mark.parametrize("ragged", ["{},extra", "{}"])
    def test_a_ragged_csv_row_is_quarantined_alone(self, tmp_path, repo, ragged):
        bad = line(day=2)
        bad = ragged.format(bad) if ragged != "{}" else bad.rsplit(",", 1)[0]
        source = tmp_path / "in.csv"
        source.write_text("\n".join([HEADER, line(day=1), bad, line(day=3)]) + "\n")

        summary = ingest_files([source], repo, now=NOW)

        assert (summary.accepted, summary.rejected) == (2, 1)
        assert summary.rejected_by_reason == {"malformed_row": 1}
        rejected = quarantined(repo)
        assert (rejected.source_row.tolist(), rejected.reason.tolist()) == ([2], ["malformed_row"])

    def test_a_non_object_json_line_is_quarantined_alone(self, tmp_path, repo):
        source = tmp_path / "in.jsonl"
        source.write_text("\n".join([json.dumps(event(day=1)), "[1, 2, 3]", "not json {",
                                     "42", json.dumps(event(day=3))]) + "\n")

        summary = ingest_files([source], repo, now=NOW)

        assert (summary.accepted, summary.rejected) == (2, 3)
        rejected = quarantined(repo)
        assert rejected.source_row.tolist() == [2, 3, 4]
        assert set(rejected.reason) == {"malformed_row"}

    def test_row_numbers_count_blank_lines(self, tmp_path, repo):
        source = tmp_path / "in.csv"
        source.write_text("\n".join([HEADER, line(), "", line(event_type="nope")]) + "\n")
        ingest_files([source], repo, now=NOW)
        assert quarantined(repo).source_row.tolist() == [3]

    def test_a_json_value_of_another_type_is_validated_as_its_text(self, tmp_path, repo):
        source = tmp_path / "in.jsonl"
        source.write_text(json.dumps(event(feature_adoption_score=True)) + "\n"
                          + json.dumps(event(customer_id=42)) + "\n")
        summary = ingest_files([source], repo, now=NOW)
        assert summary.rejected_by_reason == {"invalid_score": 1}
        assert stored(repo).customer_id.tolist() == ["42"]


class TestBrokenFiles:
    def test_a_truncated_parquet_file_is_an_input_error_naming_it(self, tmp_path, repo):
        whole = tmp_path / "whole.parquet"
        pd.DataFrame([event()]).to_parquet(whole)
        cut = tmp_path / "cut.parquet"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        with pytest.raises(InputError, match=r"cut.parquet: not a readable Parquet file"):
            ingest_files([cut], repo, now=NOW)

    def test_a_file_that_is_not_parquet_is_an_input_error_naming_it(self, tmp_path, repo):
        fake = tmp_path / "fake.parquet"
        fake.write_text(HEADER + "\n" + line() + "\n")
        with pytest.raises(InputError, match=r"fake.parquet: not a readable Parquet file"):
            ingest_files([fake], repo, now=NOW)
        assert EventLog(repo).is_empty()


    def test_a_semicolon_separated_csv_is_named_as_such(self, tmp_path, repo):
        source = tmp_path / "in.csv"
        source.write_text(HEADER.replace(",", ";") + "\n" + line().replace(",", ";") + "\n")
        with pytest.raises(InputError, match="must be comma-separated"):
            ingest_files([source], repo, now=NOW)

    def test_a_parquet_read_failing_part_way_is_an_input_error_not_an_empty_ingest(
            self, tmp_path, repo, monkeypatch):
        from usage_features.ingestion import staging

        source = tmp_path / "in.parquet"
        pd.DataFrame([event()]).to_parquet(source)
        real_run = staging.run

        def failing_run(con, statement, params=None):
            if statement.lstrip().startswith("INSERT INTO staged"):
                raise duckdb.IOException("corrupt page")
            return real_run(con, statement, params)

        monkeypatch.setattr(staging, "run", failing_run)
        with pytest.raises(InputError, match=r"in.parquet: cannot be read as Parquet: .*corrupt"):
            ingest_files([source], repo, now=NOW)
        assert EventLog(repo).is_empty()


class TestHostileFileNames:
    def test_a_name_that_is_sql_is_read_as_a_name(self, tmp_path, repo, monkeypatch):
        monkeypatch.chdir(tmp_path)
        name = "inj' (FORMAT csv); COPY (SELECT 42 AS pwned) TO 'PWNED.csv' --.parquet"
        pd.DataFrame([event(), event(event_type="nope")]).to_parquet(tmp_path / name)
        csv_name = name.replace(".parquet", ".csv")
        (tmp_path / csv_name).write_text(HEADER + "\n" + line(day=2) + "\n"
                                         + line(event_type="nope") + "\n")

        summary = ingest_files([tmp_path / name, tmp_path / csv_name], repo, now=NOW)

        assert (summary.accepted, summary.rejected) == (2, 2)
        assert len(summary.quarantine_files) == 2
        assert not list(tmp_path.rglob("PWNED*"))

    @pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
    def test_a_quote_in_a_name_works(self, tmp_path, repo, suffix):
        source = tmp_path / f"o'brien's events{suffix}"
        frame = pd.DataFrame([event()])
        if suffix == ".parquet":
            frame.to_parquet(source)
        elif suffix == ".csv":
            frame.to_csv(source, index=False)
        else:
            frame.to_json(source, orient="records", lines=True)
        assert ingest_files([source], repo, now=NOW).accepted == 1

    @pytest.mark.parametrize("suffix", [".parquet", ".csv"])
    def test_a_name_with_glob_characters_is_one_file(self, tmp_path, repo, suffix):
        def write(path, frame):
            frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)

        write(tmp_path / f"ev*{suffix}", pd.DataFrame([event(customer="star")]))
        write(tmp_path / f"evil{suffix}", pd.DataFrame([event(customer="other")]))
        write(tmp_path / f"ev[1]{suffix}", pd.DataFrame([event(customer="bracket")]))
        write(tmp_path / f"ev1{suffix}", pd.DataFrame([event(customer="one")]))

        ingest_files([tmp_path / f"ev*{suffix}", tmp_path / f"ev[1]{suffix}"], repo, now=NOW)

        assert sorted(stored(repo).customer_id) == ["bracket", "star"]

    def test_quarantine_of_a_hostile_name_keeps_the_name(self, tmp_path, repo):
        name = "it's [bad]*.csv"
        (tmp_path / name).write_text(HEADER + "\n" + line(event_type="nope") + "\n")
        ingest_files([tmp_path / name], repo, now=NOW)
        assert quarantined(repo).source_file.tolist() == [str(tmp_path / name)]

    def test_the_links_used_to_read_are_removed(self, tmp_path, repo, monkeypatch):
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
        (tmp_path / "tmp").mkdir()
        pd.DataFrame([event()]).to_parquet(tmp_path / "in.parquet")
        ingest_files([tmp_path / "in.parquet"], repo, now=NOW)
        assert os.listdir(tmp_path / "tmp") == []


class TestIdsAreStrings:
    def test_leading_zeros_survive_csv(self, tmp_path, repo):
        source = tmp_path / "in.csv"
        source.write_text("\n".join([HEADER, line(customer="00042"), line(customer="007")]))
        ingest_files([source], repo, now=NOW)
        assert sorted(stored(repo).customer_id) == ["00042", "007"]

    def test_leading_zeros_survive_json_lines(self, tmp_path, repo):
        source = tmp_path / "in.jsonl"
        source.write_text(json.dumps(event(customer="00042")) + "\n")
        ingest_files([source], repo, now=NOW)
        assert stored(repo).customer_id.tolist() == ["00042"]

    def test_ids_differing_only_by_surrounding_whitespace_are_one_customer(self, tmp_path,
                                                                             repo):
        source = tmp_path / "in.csv"
        source.write_text("\n".join([HEADER, line(customer="acme", day=1),
                                     line(customer='" acme"', day=2),
                                     line(customer='"acme\t"', day=3)]) + "\n")
        assert ingest_files([source], repo, now=NOW).accepted == 3
        assert stored(repo).customer_id.tolist() == ["acme"] * 3

    def test_a_re_sent_event_with_a_padded_id_is_a_duplicate(self, tmp_path, repo):
        first = event(customer="acme")
        pd.DataFrame([first]).to_csv(tmp_path / "a.csv", index=False)
        pd.DataFrame([{**first, "customer_id": " acme "}]).to_csv(tmp_path / "b.csv",
                                                                   index=False)
        ingest_files([tmp_path / "a.csv"], repo, now=NOW)
        assert ingest_files([tmp_path / "b.csv"], repo, now=NOW).duplicates == 1


class TestLimitsThroughIngest:
    def test_each_broken_limit_is_quarantined_with_its_reason(self, tmp_path, repo):
        rows = [event(customer="x" * 10_000_000), event(customer="evil\u202etxt.exe"),
                event(timestamp="0001-01-01T00:00:00Z"), event(timestamp="1900-01-01T00:00:00Z"),
                event(timestamp="2026-03-01T10:00:00+25:00"), event(event_type=" Login "),
                event(customer="ok")]
        source = tmp_path / "in.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))

        summary = ingest_files([source], repo, now=NOW)

        assert summary.rejected_by_reason == {
            "customer_id_too_long": 1, "invalid_customer_id": 1, "implausible_timestamp": 2,
            "unparseable_timestamp": 1}
        assert sorted(stored(repo).customer_id) == ["c1", "ok"]

    def test_the_repo_settings_set_the_limits(self, tmp_path, repo):
        repo.repo.mkdir(parents=True)
        (repo.repo / "usage_features.yaml").write_text(
            "limits:\n  earliest_timestamp: 2026-03-02T00:00:00Z\n"
            "  max_customer_id_length: 3\n")
        source = tmp_path / "in.csv"
        source.write_text("\n".join([HEADER, line(day=1), line(customer="abcd", day=3),
                                     line(customer="abc", day=3)]))
        summary = ingest_files([source], repo, now=NOW)
        assert summary.rejected_by_reason == {"implausible_timestamp": 1,
                                              "customer_id_too_long": 1}


class TestMapping:
    @pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
    def test_every_format_is_mapped(self, tmp_path, repo, suffix):
        frame = pd.DataFrame([event(customer="00042")]).rename(
            columns={"timestamp": "occurred_at", "customer_id": "account_id"})
        frame["region"] = "eu"
        source = tmp_path / f"in{suffix}"
        if suffix == ".csv":
            frame.to_csv(source, index=False)
        elif suffix == ".jsonl":
            frame.to_json(source, orient="records", lines=True)
        else:
            frame.to_parquet(source)
        with pytest.warns(UserWarning, match="ignoring extra column.*region"):
            summary = ingest_files([source], repo, now=NOW, columns={
                "occurred_at": "timestamp", "account_id": "customer_id"})
        assert summary.accepted == 1
        assert stored(repo).customer_id.tolist() == ["00042"]

    def test_a_mapped_source_absent_from_the_file_is_named(self, tmp_path, repo):
        source = tmp_path / "in.csv"
        source.write_text(HEADER.replace("timestamp", "ts") + "\n" + line() + "\n")
        with pytest.raises(InputError, match=r"timestamp \(mapped from 'occurred_at', which "
                                             r"is absent\)"):
            ingest_files([source], repo, now=NOW, columns={"occurred_at": "timestamp"})

    def test_a_repeated_column_is_an_error(self, tmp_path, repo):
        source = tmp_path / "in.csv"
        source.write_text(HEADER + ",customer_id\n" + line() + ",c2\n")
        with pytest.raises(InputError, match="both 'customer_id' and 'customer_id'"):
            ingest_files([source], repo, now=NOW)

    def test_the_stored_mapping_is_the_default(self, tmp_path, repo):
        repo.repo.mkdir(parents=True)
        (repo.repo / "usage_features.yaml").write_text(
            "events:\n  columns:\n    occurred_at: timestamp\n")
        source = tmp_path / "in.csv"
        source.write_text(HEADER.replace("timestamp", "occurred_at") + "\n" + line() + "\n")
        assert ingest_files([source], repo, now=NOW).accepted == 1


def test_a_json_file_without_any_object_line_says_so(tmp_path):
    source = tmp_path / "in.json"
    source.write_text('[\n  1,\n  2\n]\n')
    with pytest.raises(InputError, match="no line is a JSON object"):
        ingest_files([source], RepoPaths(tmp_path / "repo"), now=NOW)

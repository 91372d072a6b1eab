"""Ingesting another product's export: its own event names (declared, or kept as "other"),
ids of any text or none at all (derived from the content), no adoption score."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from tests.integration.test_ingest import quarantined, stored, write
from usage_features.config import RepoPaths
from usage_features.ingestion import ingest_files
from usage_features.ingestion.readers import InputError
from usage_features.ingestion.settings import SettingsError, load_settings

NOW = datetime(2026, 3, 10, tzinfo=UTC)
SETTINGS = """
events:
  columns: {account_id: customer_id, event_time: timestamp, event_type_name: event_type}
  types:
    create_opportunity: {role: core}
    connect_mailbox: {role: lock_in}
    login: {role: basic}
    search: {}
  unlisted: UNLISTED
"""


def crm(account=7, time="2026-03-01T10:00:00+05:30", name="search", **extra) -> dict:
    return {"account_id": account, "event_time": time, "event_type_name": name, **extra}


def repo_with(tmp_path, unlisted="other", extra="") -> RepoPaths:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "usage_features.yaml").write_text(SETTINGS.replace("UNLISTED", unlisted) + extra)
    return RepoPaths(repo)


class TestEventsWithoutAnId:
    def test_identical_rows_of_one_file_are_each_an_event(self, tmp_path):
        repo = repo_with(tmp_path)
        rows = [crm()] * 5 + [crm(name=" Search ")]
        summary = ingest_files([write(tmp_path / "day.csv", rows)], repo, now=NOW)
        assert ((summary.read, summary.accepted, summary.rejected, summary.duplicates)
                == (6, 6, 0, 0))
        log = stored(repo)
        assert log.event_id.nunique() == 6 and set(log.event_type) == {"search"}
        assert (log.customer_id == "7").all()
        assert log.feature_adoption_score.isna().all()

    def test_re_ingesting_the_file_or_a_later_file_repeating_its_rows_adds_nothing(self, tmp_path):
        repo = repo_with(tmp_path)
        rows = [crm()] * 3 + [crm(name="login")]
        first = write(tmp_path / "a.csv", rows)
        ingest_files([first], repo, now=NOW)
        again = ingest_files([first], repo, now=NOW)
        assert (again.accepted, again.duplicates) == (0, 4)
        # the same instant under another offset, one more identical row, one changed value
        later = [crm(time="2026-03-01T04:30:00Z")] * 4 + [crm(name="login", account=8)]
        summary = ingest_files([write(tmp_path / "b.jsonl", later)], repo, now=NOW)
        assert (summary.accepted, summary.duplicates, summary.rejected) == (2, 3, 0)
        assert len(stored(repo)) == 6

    def test_columns_named_as_part_of_the_key_tell_otherwise_identical_rows_apart(self, tmp_path):
        repo = repo_with(tmp_path, extra="  key: [session]\n")
        rows = [crm(session="s1"), crm(session="s2")]
        ingest_files([write(tmp_path / "a.csv", rows)], repo, now=NOW)
        summary = ingest_files([write(tmp_path / "b.csv", rows[::-1])], repo, now=NOW)
        assert (summary.accepted, summary.duplicates) == (0, 2)

    def test_a_missing_key_column_is_an_error_naming_it(self, tmp_path):
        repo = repo_with(tmp_path, extra="  key: [session]\n")
        with pytest.raises(InputError, match="session"):
            ingest_files([write(tmp_path / "a.csv", [crm()])], repo, now=NOW)


class TestIdsOfAnyText:
    def test_integer_ids_are_ids_and_a_known_one_with_other_values_is_rejected(self, tmp_path):
        repo = repo_with(tmp_path)
        ingest_files([write(tmp_path / "a.parquet", [crm(id=1), crm(id=2, name="login")])],
                     repo, now=NOW)
        (repo.repo / "usage_features.yaml").write_text(
            (repo.repo / "usage_features.yaml").read_text().replace(
                "event_type_name: event_type}", "event_type_name: event_type, id: event_id}"))
        summary = ingest_files([write(tmp_path / "b.csv", [crm(id=3), crm(id=4), crm(id=3)])],
                               repo, now=NOW)
        assert (summary.accepted, summary.duplicates) == (2, 1)
        clash = ingest_files([write(tmp_path / "c.csv", [crm(id=4, name="login")])], repo, now=NOW)
        assert clash.rejected_by_reason == {"conflicting_event_id": 1}
        assert {"3", "4"} <= set(stored(repo).event_id) and len(stored(repo)) == 4


class TestUnlistedNames:
    def test_with_other_they_are_kept_and_counted_by_name(self, tmp_path):
        repo = repo_with(tmp_path, "other")
        rows = [crm(name="Export_PDF"), crm(name="export_pdf", account=8), crm(name="print"),
                crm(name="search")]
        summary = ingest_files([write(tmp_path / "a.csv", rows)], repo, now=NOW)
        assert summary.accepted == 4 and summary.rejected == 0
        assert summary.unlisted_by_name == {"export_pdf": 2, "print": 1}
        assert sorted(stored(repo).event_type) == ["export_pdf", "export_pdf", "print", "search"]

    def test_with_reject_they_are_quarantined_with_their_raw_name(self, tmp_path):
        repo = repo_with(tmp_path, "reject")
        rows = [crm(name="Export_PDF"), crm(name="search"), crm(name="")]
        summary = ingest_files([write(tmp_path / "a.csv", rows)], repo, now=NOW)
        assert (summary.accepted, summary.rejected) == (1, 2)
        assert summary.rejected_by_reason == {"unknown_event_type": 2}
        assert summary.unlisted_by_name == {"export_pdf": 1}
        assert quarantined(repo).event_type.tolist() == ["Export_PDF", None]


class TestTheVocabularyFile:
    @pytest.mark.parametrize(("types", "message"), [
        ("event: {}", "event_count_30d"),
        ("events: {}", "reserved"),
        ("other: {}", "reserved"),
        ("2fa_login: {}", "digit"),
        ("add-contact: {}\n    add_contact: {}", "same feature name"),
        ("Search: {}\n    search: {}", "same name"),
        ("search: {role: champion}", "unknown role"),
    ])
    def test_a_name_that_cannot_make_its_features_is_an_error_naming_it(self, tmp_path, types,
                                                                        message):
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "usage_features.yaml").write_text(f"events:\n  types:\n    {types}\n")
        with pytest.raises(SettingsError, match=message):
            load_settings(repo)

    def test_without_types_the_seed_vocabulary_and_its_score_are_the_default(self, tmp_path):
        vocabulary = load_settings(tmp_path).vocabulary
        assert not vocabulary.declared and vocabulary.adoption == "score"
        assert "monitoring_run" in vocabulary.names and len(vocabulary.names) == 8

    def test_an_export_without_a_score_column_needs_none(self, tmp_path):
        repo = repo_with(tmp_path)
        frame = pd.DataFrame([crm(), crm(name="login")])
        summary = ingest_files([write(tmp_path / "a.parquet", frame.to_dict("records"))], repo,
                               now=NOW)
        assert summary.accepted == 2


class TestNamesNewSinceTraining:
    def test_monitor_finds_the_names_of_the_last_30_days_the_model_never_saw(self, tmp_path):
        from usage_features.adapters.event_log import EventLog
        from usage_features.monitoring.report import new_event_names

        repo = repo_with(tmp_path, "other")
        rows = [crm(time="2026-01-05T10:00:00Z", name="print"),
                crm(time="2026-02-20T10:00:00Z", name="search"),
                crm(time="2026-02-25T10:00:00Z", name="export_pdf"),
                crm(time="2026-02-26T10:00:00Z", name="export_pdf"),
                crm(time="2026-01-06T10:00:00Z", name="archive")]  # new, but too long ago
        ingest_files([write(tmp_path / "a.csv", rows)], repo, now=NOW)
        trained_on = EventLog(repo).event_names(last=datetime(2026, 1, 5).date())
        assert trained_on == {"print": 1}
        assert new_event_names(repo, trained_on, NOW) == {"export_pdf": 2, "search": 1}
        assert new_event_names(repo, None, NOW) == {}  # a model that recorded no names

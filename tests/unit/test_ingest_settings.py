"""A repo's ingestion settings: --map flags, the stored mapping, the limits."""

from datetime import UTC, date, datetime, timedelta

import pytest

from usage_features.ingestion.settings import (
    Limits,
    SettingsError,
    check_mapping,
    load_settings,
    merge_mappings,
    parse_map_flags,
)
from usage_features.schema import EVENT_COLUMNS


class TestMapFlags:
    def test_flags_become_a_mapping(self):
        assert parse_map_flags(["occurred_at=timestamp", " account_id = customer_id"]) == {
            "occurred_at": "timestamp", "account_id": "customer_id"}

    @pytest.mark.parametrize("flag", ["occurred_at", "=timestamp", "occurred_at=", ""])
    def test_a_flag_without_both_sides_is_an_error(self, flag):
        with pytest.raises(SettingsError, match="expected SRC=DEST"):
            parse_map_flags([flag])

    def test_a_source_mapped_twice_is_an_error(self):
        with pytest.raises(SettingsError, match="mapped twice"):
            parse_map_flags(["a=timestamp", "a=event_id"])


class TestMerging:
    def test_a_flag_replaces_the_stored_entry_for_its_target(self):
        stored = {"occurred_at": "timestamp", "account_id": "customer_id"}
        assert merge_mappings(stored, {"happened_at": "timestamp"}) == {
            "account_id": "customer_id", "happened_at": "timestamp"}

    def test_a_flag_replaces_the_stored_entry_for_its_source(self):
        assert merge_mappings({"ts": "timestamp"}, {"ts": "event_id"}) == {"ts": "event_id"}

    def test_unknown_targets_are_named(self):
        with pytest.raises(SettingsError, match=r"unknown target column.*occurred.*expected one "
                                                "of: event_id"):
            check_mapping({"a": "occurred"}, EVENT_COLUMNS)

    def test_two_sources_for_one_target_are_named(self):
        with pytest.raises(SettingsError, match="'a' and 'b' are both mapped to 'timestamp'"):
            check_mapping({"a": "timestamp", "b": "timestamp"}, EVENT_COLUMNS)


class TestTheSettingsFile:
    def write(self, tmp_path, text):
        (tmp_path / "usage_features.yaml").write_text(text)
        return load_settings(tmp_path)

    def test_no_file_means_the_defaults(self, tmp_path):
        settings = load_settings(tmp_path)
        assert settings.limits == Limits() and settings.event_columns == {}
        assert settings.limits.earliest_timestamp == datetime(1970, 1, 1, tzinfo=UTC)
        assert settings.limits.max_future == timedelta(hours=24)
        assert settings.limits.max_customer_id_length == 256

    def test_mappings_and_limits_are_read(self, tmp_path):
        settings = self.write(tmp_path, (
            "events:\n  columns:\n    occurred_at: timestamp\n"
            "customers:\n  columns:\n    account_id: customer_id\n"
            "limits:\n  earliest_timestamp: 2020-01-01T00:00:00+02:00\n"
            "  max_future_hours: 1.5\n  max_customer_id_length: 64\n"))
        assert settings.event_columns == {"occurred_at": "timestamp"}
        assert settings.customer_columns == {"account_id": "customer_id"}
        assert settings.limits == Limits(datetime(2019, 12, 31, 22, tzinfo=UTC),
                                         timedelta(hours=1.5), 64)

    def test_the_history_s_declared_start_is_a_day(self, tmp_path):
        assert load_settings(tmp_path).complete_from is None  # default: the log's first day
        for text in ("2025-03-01", "'2025-03-01'"):
            settings = self.write(tmp_path, f"events:\n  complete_from: {text}\n")
            assert settings.complete_from == date(2025, 3, 1)

    def test_a_date_is_midnight_utc(self, tmp_path):
        settings = self.write(tmp_path, "limits:\n  earliest_timestamp: 2000-01-01\n")
        assert settings.limits.earliest_timestamp == datetime(2000, 1, 1, tzinfo=UTC)

    @pytest.mark.parametrize(("text", "message"), [
        ("limits:\n  earliest_timestamp: '2000-01-01 00:00:00'\n", "UTC offset"),
        ("limits:\n  earliest_timestamp: soon\n", "not an ISO-8601"),
        ("limits:\n  max_customer_id_length: 0\n", "positive integer"),
        ("limits:\n  max_future_hours: -1\n", "number >= 0"),
        ("limits:\n  max_id: 3\n", "unknown limit"),
        ("event:\n  columns: {}\n", "unknown section"),
        ("events:\n  columns: [a, b]\n", "must map source column names"),
        ("events: [\n", "not valid YAML"),
        ("- a\n", "mapping at the top level"),
        ("events:\n  complete_from: 2025-03-01T06:00:00Z\n", "must be a UTC day"),
        ("events:\n  complete_from: March\n", "must be a UTC day, e.g. 2025-03-01, got 'March'"),
    ])
    def test_a_bad_file_is_an_error_that_says_why(self, tmp_path, text, message):
        with pytest.raises(SettingsError, match=message):
            self.write(tmp_path, text)

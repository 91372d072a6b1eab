"""Proposing a repo's event vocabulary from an export: counting, rendering, merging, writing."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
import yaml

from usage_features.domain.vocabulary import Role, VocabularyError, parse_vocabulary
from usage_features.ingestion import vocabulary_proposal
from usage_features.ingestion.readers import InputError
from usage_features.ingestion.settings import (
    SettingsError,
    load_settings,
    read_settings_file,
    settings_path,
)
from usage_features.ingestion.vocabulary_proposal import (
    Proposal,
    count_event_names,
    merge_types,
    propose,
    render_block,
    write_settings_file,
)

KINDS = ["search", " Search ", "SEARCH", "add_contact", "login", "login", "", None]


def write_export(path, kinds, column="event_type"):
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(kinds))], column: kinds})
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


class TestCounting:
    @pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
    def test_names_are_normalised_counted_and_ranked_with_ties_by_name(self, tmp_path, suffix):
        path = write_export(tmp_path / f"events{suffix}", KINDS)

        counts, unnamed = count_event_names([path])

        assert counts == [("search", 3), ("login", 2), ("add_contact", 1)]
        assert unnamed == 2  # the empty name and the missing one

    def test_files_of_every_format_add_up(self, tmp_path):
        paths = [write_export(tmp_path / f"e{s}", KINDS) for s in (".csv", ".jsonl", ".parquet")]

        counts, unnamed = count_event_names(paths)

        assert counts == [("search", 9), ("login", 6), ("add_contact", 3)]
        assert unnamed == 6

    def test_a_line_that_is_not_a_record_is_not_a_name(self, tmp_path):
        path = tmp_path / "events.jsonl"
        path.write_text('{"event_type": "login"}\nnot json\n["login"]\n')

        assert count_event_names([path]) == ([("login", 1)], 2)

    def test_a_mapping_names_the_event_type_column(self, tmp_path):
        path = write_export(tmp_path / "events.csv", ["login", "search"], column="action")

        assert count_event_names([path], {"action": "event_type"}) == (
            [("login", 1), ("search", 1)], 0)

    def test_a_missing_event_type_column_is_an_input_error_naming_it(self, tmp_path):
        path = write_export(tmp_path / "events.csv", ["login"], column="action")

        with pytest.raises(InputError, match=r"missing required column.*event_type"):
            count_event_names([path])

    def test_an_unreadable_file_is_an_input_error(self, tmp_path):
        path = tmp_path / "events.parquet"
        path.write_bytes(b"PAR1 not really")

        with pytest.raises(InputError, match=r"events.parquet"):
            count_event_names([path])

    @pytest.mark.parametrize("suffix", [".csv", ".parquet"])
    def test_too_many_distinct_names_is_not_an_event_type_column(self, tmp_path, monkeypatch,
                                                                 suffix):
        monkeypatch.setattr(vocabulary_proposal, "MAX_DISTINCT", 3)
        path = write_export(tmp_path / f"events{suffix}", [f"n{i}" for i in range(5)])

        with pytest.raises(InputError, match="more than 3 distinct event names"):
            count_event_names([path])


class TestProposing:
    def test_reserved_digit_and_colliding_names_are_left_out_with_a_reason(self):
        proposal = propose([("search", 9), ("add-contact", 5), ("events", 4), ("3d_view", 3),
                            ("add_contact", 2), ("Other", 1)], files=1)

        assert proposal.names == (("search", 9), ("add-contact", 5))
        reasons = {x.name: x.reason for x in proposal.left_out}
        assert set(reasons) == {"events", "3d_view", "add_contact", "Other"}
        assert "reserved" in reasons["events"] and "reserved" in reasons["Other"]
        assert "digit" in reasons["3d_view"]
        assert "'add-contact'" in reasons["add_contact"]
        assert proposal.events == 24

    def test_a_name_whose_feature_is_a_built_in_one_is_left_out(self):
        proposal = propose([("event", 3), ("login", 2)], files=1)  # event_count_30d: the total

        assert proposal.names == (("login", 2),)
        assert "built-in" in proposal.left_out[0].reason

    def test_the_block_is_a_valid_vocabulary_with_a_count_per_name(self):
        proposal = propose([("search", 402_113), ("events", 7), ("add_contact", 5)], files=3)

        block = render_block(proposal)

        vocabulary = parse_vocabulary(yaml.safe_load(block)["types"])
        assert vocabulary.names == ("search", "add_contact")
        lines = block.splitlines()
        assert lines[0].startswith("types:") and "2 event names in 3 file(s), " \
            "402,125 events" in lines[0]
        assert "{role: core}" in block  # the hint: roles are the user's to give
        assert any(line.strip().startswith("search: {}") and "# 402,113 events" in line
                   for line in lines)
        assert any(line.strip().startswith("# events: {}") and "left out" in line
                   for line in lines)

    def test_roles_given_are_rendered_and_odd_names_are_quoted(self):
        names = ["yes", "a: b", "#x", "null", "crème", "two\nlines", "x" * 140]
        proposal = propose([(n, 1) for n in names], files=1)

        block = render_block(proposal, {"a: b": "core"})

        types = yaml.safe_load(block)["types"]
        assert list(types) == names
        assert types["a: b"] == {"role": "core"}
        assert parse_vocabulary(types).of_role(Role.CORE)[0].name == "a: b"


def settings_text():
    return ("# the repo's settings\n"
            "events:\n"
            "  columns: {account_id: customer_id}\n"
            "  types:\n"
            "    Search: {role: core}\n"
            "    mailbox: {role: lock_in}\n"
            "    gone: {role: basic}\n"
            "  unlisted: other\n"
            "customers:\n"
            "  columns: {account_id: customer_id}\n"
            "limits:\n"
            "  earliest_timestamp: 2020-01-01T00:00:00Z\n"
            "  max_future_hours: 12\n")


class TestMerging:
    proposal = Proposal((("search", 5), ("mailbox", 3), ("login", 2)), (), files=1)

    def test_other_sections_and_keys_are_kept_and_declared_roles_too(self):
        merged = merge_types(yaml.safe_load(settings_text()), self.proposal)

        events = merged.settings["events"]
        assert list(events) == ["columns", "types", "unlisted"]
        assert events["types"] == {"search": {"role": "core"}, "mailbox": {"role": "lock_in"},
                                   "login": {}}
        assert merged.roles == {"search": "core", "mailbox": "lock_in"}
        assert merged.not_seen == ("gone",)
        assert merged.settings["customers"] == {"columns": {"account_id": "customer_id"}}
        assert merged.settings["limits"]["max_future_hours"] == 12

    def test_types_go_after_the_columns_when_none_were_declared(self):
        merged = merge_types({"events": {"columns": {"a": "customer_id"}, "unlisted": "other"}},
                             self.proposal)

        assert list(merged.settings["events"]) == ["columns", "types", "unlisted"]
        assert merged.not_seen == ()

    def test_types_that_are_not_a_mapping_are_refused(self):
        with pytest.raises(SettingsError, match=r"events.types must be"):
            merge_types({"events": {"types": ["login"]}}, self.proposal)


class TestWriting:
    def test_the_file_is_rewritten_keeping_every_other_setting(self, tmp_path):
        path = settings_path(tmp_path)
        path.write_text(settings_text())
        before = load_settings(tmp_path)
        merged = merge_types(read_settings_file(path), TestMerging.proposal)

        write_settings_file(path, merged.settings)

        after = load_settings(tmp_path)
        assert (after.limits, after.event_columns, after.customer_columns) == (
            before.limits, before.event_columns, before.customer_columns)
        assert after.vocabulary.names == ("search", "mailbox", "login")
        assert load_settings(tmp_path).limits.earliest_timestamp == datetime(
            2020, 1, 1, tzinfo=UTC)
        events = yaml.safe_load(path.read_text())["events"]
        vocabulary = parse_vocabulary(events["types"], events["unlisted"])
        assert vocabulary.names == ("search", "mailbox", "login")
        assert [t.name for t in vocabulary.of_role(Role.LOCK_IN)] == ["mailbox"]
        assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left

    def test_an_absent_file_is_created(self, tmp_path):
        repo = tmp_path / "repo"
        merged = merge_types(read_settings_file(settings_path(repo)), TestMerging.proposal)

        write_settings_file(settings_path(repo), merged.settings)

        assert yaml.safe_load(settings_path(repo).read_text()) == {
            "events": {"types": {"search": {}, "mailbox": {}, "login": {}}}}

    def test_an_invalid_result_is_not_written(self, tmp_path):
        path = settings_path(tmp_path)
        path.write_text(settings_text().replace("{role: core}", "{role: star}"))
        merged = merge_types(read_settings_file(path), TestMerging.proposal)

        with pytest.raises(VocabularyError, match="unknown role 'star'"):
            write_settings_file(path, merged.settings)

        assert path.read_text() == settings_text().replace("{role: core}", "{role: star}")
        assert [p.name for p in tmp_path.iterdir()] == [path.name]

    def test_a_file_that_is_not_yaml_is_a_settings_error(self, tmp_path):
        path = settings_path(tmp_path)
        path.write_text("events: [unclosed\n")

        with pytest.raises(SettingsError, match="not valid YAML"):
            read_settings_file(path)


"""Every rejection reason, checked through the column-wise validation SQL."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from usage_features.adapters.duckdb_connection import connect
from usage_features.domain.value_objects import EventType
from usage_features.ingestion.settings import Limits
from usage_features.ingestion.validation import REASONS, validated_sql

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
VALID = {
    "raw_event_id": "6f1c2a7e-8b1d-4c1e-9f3a-1b2c3d4e5f60",
    "raw_customer_id": "cust-1",
    "raw_timestamp": "2026-03-01T10:00:00Z",
    "raw_event_type": "login",
    "raw_feature_adoption_score": "0.5",
}


def validate(limits=None, malformed=False, columns="*", **overrides):
    row = {**VALID, **overrides}
    con = connect()
    table = pa.Table.from_pylist([row], schema=pa.schema(
        [(name, pa.string()) for name in VALID]))
    table = table.add_column(0, "source_row", pa.array([1])).add_column(0, "file_index",
                                                                         pa.array([0]))
    table = table.append_column("malformed", pa.array([malformed]))
    con.register("chunk", table)
    text = {name.removeprefix("raw_"): "VARCHAR" for name in VALID}
    sql = validated_sql("chunk", text, NOW, limits or Limits())
    return con.sql(f"SELECT {columns} FROM ({sql})").to_arrow_table().to_pylist()[0]


def reasons(limits=None, **overrides):
    reason = validate(limits, columns="reason", **overrides)["reason"]
    return set(reason.split(";")) if reason else set()


class TestValidRows:
    def test_a_valid_row_has_no_reason_and_canonical_values(self):
        row = validate(raw_event_id=VALID["raw_event_id"].upper(),
                       raw_timestamp="2026-03-01T12:30:00+02:00")
        assert row["reason"] is None
        assert row["event_id"] == VALID["raw_event_id"]
        assert row["timestamp"] == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
        assert row["feature_adoption_score"] == 0.5

    @pytest.mark.parametrize("timestamp", [
        "2026-03-01T10:00:00Z", "2026-03-01 10:00:00+00", "2026-03-01T10:00:00.123456-05:00",
        "2026-03-01T10:00:00+0530",
    ])
    def test_timestamps_with_an_offset_are_accepted(self, timestamp):
        assert reasons(raw_timestamp=timestamp) == set()

    @pytest.mark.parametrize("score", ["0", "1", "1.0", "0.19999"])
    def test_scores_at_the_bounds_are_accepted(self, score):
        assert reasons(raw_feature_adoption_score=score) == set()

    def test_a_timestamp_up_to_a_day_ahead_is_accepted(self):
        assert reasons(raw_timestamp=(NOW + timedelta(hours=23)).isoformat()) == set()


class TestRejectionReasons:
    @pytest.mark.parametrize("event_id", ["", "   ", None, "x" * 257, "ab\tc", "ab\u200bc",
                                          "ab\ufffdc"])
    def test_an_event_id_that_is_empty_too_long_or_has_invisible_characters(self, event_id):
        assert reasons(raw_event_id=event_id) == {"invalid_event_id"}

    @pytest.mark.parametrize(("event_id", "stored"), [
        ("42", "42"), (" evt-7 ", "evt-7"), ("x" * 256, "x" * 256),
        ("6F1C2A7E-8B1D-4C1E-9F3A-1B2C3D4E5F60", "6f1c2a7e-8b1d-4c1e-9f3a-1b2c3d4e5f60"),
        ("ABC", "ABC")])
    def test_any_other_text_is_an_id_trimmed_and_a_uuid_lower_cased(self, event_id, stored):
        row = validate(raw_event_id=event_id, columns="event_id, reason")
        assert row == {"event_id": stored, "reason": None}

    @pytest.mark.parametrize("customer_id", ["", "   ", None])
    def test_an_empty_customer_id(self, customer_id):
        assert reasons(raw_customer_id=customer_id) == {"empty_customer_id"}

    @pytest.mark.parametrize("timestamp", ["garbage", "2026-13-01T00:00:00Z", "", None])
    def test_an_unparseable_timestamp(self, timestamp):
        assert reasons(raw_timestamp=timestamp) == {"unparseable_timestamp"}

    @pytest.mark.parametrize("timestamp", ["2026-03-01T10:00:00", "2026-03-01 10:00:00",
                                           "2026-03-01"])
    def test_a_naive_timestamp(self, timestamp):
        assert reasons(raw_timestamp=timestamp) == {"naive_timestamp"}

    def test_a_timestamp_more_than_a_day_ahead(self):
        ahead = (NOW + timedelta(days=1, seconds=1)).isoformat()
        assert reasons(raw_timestamp=ahead) == {"future_timestamp"}

    @pytest.mark.parametrize("event_type", ["logout", "log in", "log_in", "login\u200b", "",
                                            "   ", None])
    def test_an_unknown_event_type(self, event_type):
        assert reasons(raw_event_type=event_type) == {"unknown_event_type"}

    @pytest.mark.parametrize("score", ["", None])
    def test_a_missing_score(self, score):
        assert reasons(raw_feature_adoption_score=score) == {"missing_score"}

    @pytest.mark.parametrize("score", ["abc", "NaN", "nan"])
    def test_a_score_that_is_not_a_number(self, score):
        assert reasons(raw_feature_adoption_score=score) == {"invalid_score"}

    @pytest.mark.parametrize("score", ["-0.01", "1.01", "inf", "-inf"])
    def test_a_score_outside_the_unit_interval(self, score):
        assert reasons(raw_feature_adoption_score=score) == {"score_out_of_range"}

    def test_every_broken_rule_is_listed(self):
        assert reasons(raw_event_id="", raw_customer_id="", raw_event_type="nope") == {
            "invalid_event_id", "empty_customer_id", "unknown_event_type"}

    def test_every_reason_code_is_documented(self):
        produced = {"malformed_row", "invalid_event_id", "empty_customer_id",
                    "customer_id_too_long", "invalid_customer_id", "unparseable_timestamp",
                    "naive_timestamp", "implausible_timestamp", "future_timestamp",
                    "unknown_event_type", "missing_score", "invalid_score",
                    "score_out_of_range", "conflicting_event_id"}
        assert produced == set(REASONS)


class TestEventTypes:
    @pytest.mark.parametrize("written", ["Login", "LOGIN", " Login ", "\tlogin\n",
                                         "\u00a0LogIn\u3000"])
    def test_event_types_are_matched_after_trimming_and_lower_casing(self, written):
        row = validate(raw_event_type=written)
        assert (row["reason"], row["event_type"]) == (None, "login")

    @pytest.mark.parametrize("event_type", list(EventType))
    def test_every_event_type_in_capitals_is_its_value(self, event_type):
        assert validate(raw_event_type=event_type.value.upper())["event_type"] == event_type


class TestCustomerIdLimits:
    @pytest.mark.parametrize("written", [" acme", "acme ", "\tacme\r\n", "\u00a0acme\u2003"])
    def test_surrounding_whitespace_is_not_part_of_the_id(self, written):
        row = validate(raw_customer_id=written)
        assert (row["reason"], row["customer_id"]) == (None, "acme")

    def test_a_numeric_looking_id_keeps_its_leading_zeros(self):
        assert validate(raw_customer_id="00042")["customer_id"] == "00042"

    def test_an_id_at_the_length_limit_is_accepted(self):
        assert reasons(raw_customer_id="x" * 256) == set()

    def test_an_id_over_the_length_limit_is_rejected(self):
        assert reasons(raw_customer_id="x" * 257) == {"customer_id_too_long"}

    def test_a_ten_megabyte_id_is_rejected_as_too_long(self):
        assert reasons(raw_customer_id="x" * 10_000_000) == {"customer_id_too_long"}

    def test_the_length_limit_is_configurable(self):
        assert reasons(Limits(max_customer_id_length=4), raw_customer_id="acme1") == {
            "customer_id_too_long"}

    @pytest.mark.parametrize("written", ["ac\x00me", "ac\x1bme", "ac\tme", "ac\nme",
                                         "ac\x7fme", "ac\u202eme", "ac\u2066me", "ac\u200bme",
                                         "ac\ufeffme", "ac\u2028me", "ac\ufffdme"])
    def test_control_and_invisible_characters_are_rejected(self, written):
        assert reasons(raw_customer_id=written) == {"invalid_customer_id"}

    @pytest.mark.parametrize("written", ["cust-1", "Ärzte GmbH", "客户-7", "a b", "x@y.z"])
    def test_visible_characters_and_inner_spaces_are_accepted(self, written):
        assert reasons(raw_customer_id=written) == set()


class TestTimeRange:
    @pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z",
                                           "1969-12-31T23:59:59.999999Z"])
    def test_times_before_1970_are_implausible(self, timestamp):
        assert reasons(raw_timestamp=timestamp) == {"implausible_timestamp"}

    def test_the_epoch_itself_is_accepted(self):
        assert reasons(raw_timestamp="1970-01-01T00:00:00Z") == set()

    def test_the_earliest_plausible_time_is_configurable(self):
        limits = Limits(earliest_timestamp=datetime(2020, 1, 1, tzinfo=UTC))
        assert reasons(limits, raw_timestamp="2019-12-31T23:59:59Z") == {
            "implausible_timestamp"}
        assert reasons(limits, raw_timestamp="2020-01-01T00:00:00Z") == set()

    def test_the_allowed_skew_is_configurable(self):
        limits = Limits(max_future=timedelta(hours=1))
        ahead = (NOW + timedelta(hours=2)).isoformat()
        assert reasons(limits, raw_timestamp=ahead) == {"future_timestamp"}

    @pytest.mark.parametrize("timestamp", ["2026-03-01T10:00:00+25:00",
                                           "2026-03-01T10:00:00+24:00",
                                           "2026-03-01T10:00:00+05:60",
                                           "2026-03-01 10:00:00 America/New_York",
                                           "12026-03-01T10:00:00Z", "1772359200"])
    def test_an_impossible_offset_or_form_is_unparseable(self, timestamp):
        assert reasons(raw_timestamp=timestamp) == {"unparseable_timestamp"}

    def test_the_largest_offset_is_accepted(self):
        assert validate(raw_timestamp="2026-03-01T23:00:00+23:59")["timestamp"] == datetime(
            2026, 2, 28, 23, 1, tzinfo=UTC)


class TestMalformedRows:
    def test_a_malformed_row_has_that_reason_alone(self):
        row = validate(malformed=True, raw_event_id=None, raw_timestamp=None)
        assert row["reason"] == "malformed_row"

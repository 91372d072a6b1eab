"""Dirty mode: a share of raw rows broken in every way the ingest validation knows."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from usage_features.domain.value_objects import EventType, is_valid_uuid
from usage_features.schema import EVENT_SCHEMA
from usage_features.simulation import (
    CORRUPTIONS,
    DIRTY_EVENT_SCHEMA,
    SimulationConfig,
    simulate,
    write_simulation,
)

FRACTION = 0.05
DIRTY = SimulationConfig(customers=200, days=90, seed=5, dirty_fraction=FRACTION)
#: The ingest's rejection reason for each kind of corruption (a duplicate is dropped instead).
REASON = {
    "bad_event_id": "invalid_event_id",
    "duplicate": None,
    "naive_timestamp": "naive_timestamp",
    "unparseable_timestamp": "unparseable_timestamp",
    "unknown_event_type": "unknown_event_type",
    "score_out_of_range": "score_out_of_range",
    "missing_score": "missing_score",
    "empty_customer_id": "empty_customer_id",
}


@pytest.fixture(scope="module")
def clean():
    return simulate(SimulationConfig(customers=200, days=90, seed=5))


@pytest.fixture(scope="module")
def dirty():
    return simulate(DIRTY)


@pytest.fixture(scope="module")
def kinds(dirty) -> np.ndarray:
    return np.array(dirty.corruption.to_pylist(), dtype=object)


class TestDirtySchema:
    def test_events_are_text_with_a_float_score(self, dirty):
        assert dirty.events.schema.equals(DIRTY_EVENT_SCHEMA)

    def test_clean_output_keeps_the_event_schema_and_has_no_corruption(self, clean):
        assert clean.events.schema.equals(EVENT_SCHEMA)
        assert clean.corruption is None

    def test_the_customers_table_is_the_same_as_in_clean_mode(self, clean, dirty):
        assert dirty.customers.equals(clean.customers)

    def test_dirty_files_are_byte_identical_for_the_same_config(self, dirty, tmp_path):
        first = [p.read_bytes() for p in write_simulation(dirty, tmp_path / "a")]
        second = [p.read_bytes() for p in write_simulation(simulate(DIRTY), tmp_path / "b")]
        assert first == second


class TestCorruptedShare:
    def test_about_the_requested_fraction_of_rows_is_corrupted(self, clean, kinds):
        assert (kinds != None).sum() == round(FRACTION * clean.events.num_rows)  # noqa: E711
        assert (kinds != None).mean() == pytest.approx(FRACTION, rel=0.05)  # noqa: E711

    def test_every_kind_of_corruption_is_present_in_similar_numbers(self, kinds):
        counts = {kind: (kinds == kind).sum() for kind in CORRUPTIONS}
        assert min(counts.values()) >= max(counts.values()) - 1 > 0

    def test_a_duplicate_adds_an_exact_copy_right_after_its_row(self, dirty, clean, kinds):
        rows = dirty.events.to_pylist()
        copies = np.flatnonzero(kinds == "duplicate")
        assert all(rows[i] == rows[i - 1] for i in copies)
        assert dirty.events.num_rows == clean.events.num_rows + len(copies)


class TestCleanRowsUnaffected:
    def test_rows_without_corruption_are_the_clean_rows_as_text(self, dirty, clean, kinds):
        untouched = dirty.events.filter(dirty.corruption.is_null())
        original_rows = clean.events.num_rows - (kinds != None).sum()  # noqa: E711
        assert untouched.num_rows == original_rows + (kinds == "duplicate").sum()
        keep = np.ones(clean.events.num_rows, bool)
        source = np.cumsum(kinds != "duplicate") - 1  # each dirty row's clean row
        keep[source[(kinds != None) & (kinds != "duplicate")]] = False  # noqa: E711
        kept = clean.events.filter(keep)
        for column in ("event_id", "customer_id", "event_type", "feature_adoption_score"):
            assert untouched[column].equals(kept[column])
        parsed = [datetime.fromisoformat(t) for t in untouched["timestamp"].to_pylist()]
        assert parsed == kept["timestamp"].to_pylist()

    def test_valid_timestamps_carry_a_utc_offset(self, dirty):
        valid = dirty.events.filter(dirty.corruption.is_null())["timestamp"]
        ends_utc = pc.or_(pc.ends_with(valid, "+00:00"), pc.ends_with(valid, "Z"))
        assert pc.all(ends_utc).as_py()
        assert pc.any(pc.ends_with(valid, "Z")).as_py()

    def test_clean_rows_have_valid_ids_and_scores(self, dirty):
        valid = dirty.events.filter(dirty.corruption.is_null())
        assert all(is_valid_uuid(i) for i in valid["event_id"].to_pylist())
        assert valid["feature_adoption_score"].null_count == 0


def rows_of(dirty, kinds, kind: str) -> list[dict]:
    return [row for row, k in zip(dirty.events.to_pylist(), kinds) if k == kind]


def parses_as_timestamp(texts: list[str]) -> list[bool]:
    """Whether DuckDB (the ingest's engine) can read each text as a timestamp."""
    texts_table = pa.table({"t": pa.array(texts, pa.string())})  # noqa: F841 (read by DuckDB)
    query = "SELECT TRY_CAST(t AS TIMESTAMPTZ) IS NOT NULL FROM texts_table"
    return [row[0] for row in duckdb.connect().execute(query).fetchall()]


def same_instant(text: str, timestamp: datetime) -> bool:
    """``text`` is an ISO-8601 timestamp with an offset, of the instant ``timestamp``."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return False
    return parsed.tzinfo is not None and parsed == timestamp


class TestEachCorruptionBreaksItsField:
    def test_bad_event_ids_are_not_valid_ids(self, dirty, kinds):
        for row in rows_of(dirty, kinds, "bad_event_id"):
            event_id = row["event_id"]
            assert (not event_id.strip() or len(event_id) > 256 or "\t" in event_id
                    or "\u200b" in event_id), event_id

    def test_naive_timestamps_parse_but_carry_no_offset(self, dirty, kinds):
        texts = [r["timestamp"] for r in rows_of(dirty, kinds, "naive_timestamp")]
        assert all(datetime.fromisoformat(t).tzinfo is None for t in texts)

    def test_unparseable_timestamps_do_not_parse(self, dirty, kinds):
        texts = [r["timestamp"] for r in rows_of(dirty, kinds, "unparseable_timestamp")]
        assert not any(parses_as_timestamp(texts))

    def test_unknown_event_types_are_not_event_types(self, dirty, kinds):
        known = {t.value for t in EventType}
        assert not {r["event_type"] for r in rows_of(dirty, kinds, "unknown_event_type")} & known

    def test_out_of_range_scores_are_numbers_outside_the_unit_interval(self, dirty, kinds):
        scores = [r["feature_adoption_score"] for r in rows_of(dirty, kinds, "score_out_of_range")]
        assert all(s is not None and not 0.0 <= s <= 1.0 for s in scores)

    def test_missing_scores_are_null(self, dirty, kinds):
        rows = rows_of(dirty, kinds, "missing_score")
        assert all(r["feature_adoption_score"] is None for r in rows)

    def test_empty_customer_ids_are_blank(self, dirty, kinds):
        rows = rows_of(dirty, kinds, "empty_customer_id")
        assert all(r["customer_id"].strip() == "" for r in rows)

    def test_each_corrupted_row_differs_from_its_clean_row_in_one_field_only(
            self, dirty, clean, kinds):
        source = np.cumsum(kinds != "duplicate") - 1  # each dirty row's clean row
        originals = clean.events.to_pylist()
        for row, kind, i in zip(dirty.events.to_pylist(), kinds, source):
            if kind is None or kind == "duplicate":
                continue
            original = originals[i]
            differs = [name for name in original if name != "timestamp"
                       and row[name] != original[name]]
            if not same_instant(row["timestamp"], original["timestamp"]):
                differs.append("timestamp")
            assert len(differs) == 1, (kind, row, original)


class TestIngestingADirtyFile:
    def test_rejects_each_corruption_for_its_reason_and_drops_the_duplicates(
            self, dirty, kinds, tmp_path):
        from usage_features.config import RepoPaths
        from usage_features.ingestion import ingest_files

        events_path, _ = write_simulation(dirty, tmp_path / "raw")
        summary = ingest_files([events_path], RepoPaths(tmp_path / "repo"))
        expected = {REASON[k]: (kinds == k).sum() for k in CORRUPTIONS if REASON[k]}
        assert summary.rejected_by_reason == expected
        assert summary.duplicates == (kinds == "duplicate").sum()
        assert summary.accepted == (kinds == None).sum()  # noqa: E711

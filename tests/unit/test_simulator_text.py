"""The NumPy text formatting behind the simulator's ids and dirty timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from usage_features.simulation.text import iso_matrix, strings_from_matrix, uuid_strings


class TestIsoTimestamps:
    def test_match_arrow_formatting_across_years_and_leap_days(self):
        rng = np.random.default_rng(0)
        us = np.concatenate([
            rng.integers(0, 4_102_444_800_000_000, 5000),  # 1970-2100
            [0, 951_782_400_000_000, 1_709_164_800_000_000, 4_102_444_799_999_999],  # leap days
        ])
        ours = strings_from_matrix(*iso_matrix(us))
        arrows = pc.strftime(pa.array(us, pa.timestamp("us")), format="%Y-%m-%dT%H:%M:%S")
        assert ours.equals(arrows)

    def test_append_the_chosen_suffix_to_each_row(self):
        us = np.array([0, 0, 0])
        text = strings_from_matrix(*iso_matrix(us, (b"+00:00", b"Z", b""), np.array([0, 1, 2])))
        assert text.to_pylist() == ["1970-01-01T00:00:00.000000+00:00",
                                    "1970-01-01T00:00:00.000000Z",
                                    "1970-01-01T00:00:00.000000"]

    def test_round_trip_through_python_parsing(self):
        us = np.array([1_767_225_600_123_456])
        (text,) = strings_from_matrix(*iso_matrix(us, (b"Z",))).to_pylist()
        assert datetime.fromisoformat(text) == datetime(2026, 1, 1, 0, 0, 0, 123456,
                                                        tzinfo=UTC)


class TestUuidStrings:
    def test_are_lower_case_version_4_uuids(self):
        for text in uuid_strings(np.random.default_rng(1), 200).to_pylist():
            parsed = uuid.UUID(text)
            assert str(parsed) == text and parsed.version == 4
            assert parsed.variant == uuid.RFC_4122

    def test_are_determined_by_the_generator(self):
        first = uuid_strings(np.random.default_rng(5), 10)
        assert first.equals(uuid_strings(np.random.default_rng(5), 10))
        assert not first.equals(uuid_strings(np.random.default_rng(6), 10))

    def test_zero_rows_give_an_empty_array(self):
        assert len(uuid_strings(np.random.default_rng(0), 0)) == 0

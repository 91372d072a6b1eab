"""Checksums of stored files: a Parquet file's column chunks checked as they are read, a JSON
object that carries its own SHA-256, and the row sidecars' per-record checks."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from usage_features.adapters import row_sidecar
from usage_features.adapters.checksums import (
    DamagedFileError,
    check_parquet,
    parquet_record,
    read_checked_json,
    write_checked_json,
)
from usage_features.adapters.row_sidecar import Sidecar, sidecar_path, write_sidecar


def table(n: int = 5000) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({"customer_id": [f"c{i % 31:03d}" for i in range(n)],
                     "count": rng.integers(0, 10**9, n), "score": rng.random(n)})


@pytest.fixture
def parquet(tmp_path):
    path = tmp_path / "2025-01.parquet"
    pq.write_table(table(), path, row_group_size=1000, compression="lz4")
    return path


def flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


class TestParquetChunks:
    def test_a_byte_changed_in_a_column_is_found_by_a_reader_of_that_column_only(self, parquet):
        record = parquet_record(parquet)
        start, length, _ = record["chunks"]["score"][3]
        flip(parquet, start + length // 2)

        check_parquet(parquet, record, ["customer_id", "count"])  # not read: not checked
        with pytest.raises(DamagedFileError, match="column score differs") as caught:
            check_parquet(parquet, record, ["count", "score"])
        assert caught.value.path == parquet and "usage-features build" in str(caught.value)
        with pytest.raises(DamagedFileError):
            check_parquet(parquet, record)  # every column

    def test_the_footer_is_always_checked(self, parquet):
        record = parquet_record(parquet)
        offset, length, _ = record["footer"]
        flip(parquet, offset + length // 2)
        with pytest.raises(DamagedFileError, match="its footer differs"):
            check_parquet(parquet, record, [])

    def test_a_truncated_or_missing_file_is_named(self, parquet):
        record = parquet_record(parquet)
        parquet.write_bytes(parquet.read_bytes()[:-100])
        with pytest.raises(DamagedFileError, match="truncated"):
            check_parquet(parquet, record, [])
        parquet.unlink()
        with pytest.raises(DamagedFileError, match="missing"):
            check_parquet(parquet, record, [])

    def test_the_record_covers_every_chunk_and_the_row_count(self, parquet):
        record = parquet_record(parquet)
        assert record["rows"] == 5000
        assert {len(v) for v in record["chunks"].values()} == {5}
        assert set(record["chunks"]) == {"customer_id", "count", "score"}


class TestCheckedJson:
    def test_what_is_written_is_read_back(self, tmp_path):
        path = tmp_path / "state.json"
        value = {"event_files": ["a", "b"], "files": {"x": {"size": 3}}, "n": 1.5}
        write_checked_json(path, value)
        assert read_checked_json(path) == value

    @pytest.mark.parametrize("change", ["a digit", "a name", "cut", "no checksum", "not json"])
    def test_any_change_is_refused(self, tmp_path, change):
        path = tmp_path / "state.json"
        write_checked_json(path, {"files": {"customer_usage/2025-01.parquet": {"size": 123}}})
        text = path.read_text()
        text = {"a digit": text.replace("123", "124"),
                "a name": text.replace("2025-01", "2025-02"),
                "cut": text[:-10],
                "no checksum": json.dumps({k: v for k, v in json.loads(text).items()
                                           if k != "sha256"}),
                "not json": "\x00" + text}[change]
        path.write_text(text)
        with pytest.raises(DamagedFileError) as caught:
            read_checked_json(path)
        message = str(caught.value)
        assert message.startswith(f"cannot read {path}: ") and "\n" not in message


class TestSidecarRecords:
    @pytest.fixture
    def car(self, parquet):
        record = write_sidecar(parquet)
        return parquet, record

    @staticmethod
    def layout(path):
        data = path.read_bytes()
        length = int.from_bytes(data[8:16], "little")
        start = 16 + length
        rows = json.loads(data[16:start])["rows"]
        return start, (len(data) - start) // rows

    def test_a_changed_record_is_refused_when_read_and_only_then(self, car):
        parquet, record = car
        start, size = self.layout(sidecar_path(parquet))
        flip(sidecar_path(parquet), start + 1234 * size + size // 2)
        opened = Sidecar.open(parquet, record)
        try:
            assert opened.take(np.array([0, 1233, 1235, 4999]), ["count"]).num_rows == 4
            with pytest.raises(DamagedFileError, match="row 1234"):
                opened.take(np.array([7, 1234]), ["count"])
        finally:
            opened.close()

    def test_a_record_copied_from_another_row_is_refused(self, car):
        parquet, _ = car
        path = sidecar_path(parquet)
        start, size = self.layout(path)
        data = bytearray(path.read_bytes())
        data[start + 10 * size:start + 11 * size] = data[start + 20 * size:start + 21 * size]
        path.write_bytes(bytes(data))
        opened = Sidecar.open(parquet)
        try:
            with pytest.raises(DamagedFileError, match="row 10"):
                opened.take(np.array([10]), ["score"])
        finally:
            opened.close()

    def test_every_byte_of_a_record_and_a_zeroed_record_are_checked(self, car):
        parquet, _ = car
        path = sidecar_path(parquet)
        start, size = self.layout(path)
        clean = path.read_bytes()
        for offset in [*range(size), "zeroed"]:
            data = bytearray(clean)
            at = start + 77 * size
            if offset == "zeroed":
                data[at:at + size] = bytes(size)
            else:
                data[at + offset] ^= 0x10
            path.write_bytes(bytes(data))
            opened = Sidecar.open(parquet)
            try:
                with pytest.raises(DamagedFileError, match="row 77"):
                    opened.take(np.array([76, 77]), ["count"])
                assert opened.take(np.array([76, 78]), ["count"]).num_rows == 2
            finally:
                opened.close()

    def test_a_sidecar_of_the_earlier_format_is_not_read(self, car):
        parquet, record = car
        path = sidecar_path(parquet)
        assert not row_sidecar.is_older_version(path)
        data = bytearray(path.read_bytes())
        data[:8] = row_sidecar._OLDER[0]
        path.write_bytes(bytes(data))
        record = {**record, "header": hashlib.sha256(data[:self.layout(path)[0]]).hexdigest()}
        assert row_sidecar.is_older_version(path)
        assert Sidecar.open(parquet) is None and Sidecar.open(parquet, record) is None

    def test_a_truncated_sidecar_is_refused(self, car):
        parquet, _ = car
        path = sidecar_path(parquet)
        path.write_bytes(path.read_bytes()[:-7])
        with pytest.raises(DamagedFileError, match="truncated"):
            Sidecar.open(parquet)

    def test_with_its_record_a_missing_or_other_sidecar_is_refused(self, car, tmp_path):
        parquet, record = car
        other = tmp_path / "other.parquet"
        pq.write_table(table(), other, row_group_size=1000, compression="lz4")
        write_sidecar(other)
        sidecar_path(parquet).write_bytes(sidecar_path(other).read_bytes())
        with pytest.raises(DamagedFileError, match=r"header differs|were written"):
            Sidecar.open(parquet, record)
        sidecar_path(parquet).unlink()
        assert Sidecar.open(parquet) is None  # without a record: the Parquet scan instead
        with pytest.raises(DamagedFileError, match="missing"):
            Sidecar.open(parquet, record)

    def test_the_record_is_the_file_s_size_and_hashes(self, car):
        parquet, record = car
        path = sidecar_path(parquet)
        assert record["size"] == path.stat().st_size
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

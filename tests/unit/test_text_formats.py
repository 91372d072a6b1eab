"""CSV and JSON Lines parsing: Arrow's fast reader and Python's row-by-row one agree."""

import gzip

import pyarrow as pa
import pytest

from usage_features.ingestion import text_formats
from usage_features.ingestion.text_formats import (
    _arrow_can_read,
    _arrow_csv_batches,
    _python_csv_batches,
    csv_batches,
)

POSITIONS = {"a": 0, "c": 2}
WELL_FORMED = [
    'a,b,c\n1,2,3\n4,5,6\n',
    'a,b,c\r\n1,2,3\r\n4,,6\r\n',
    '\ufeffa,b,c\n"x, y",2,"multi\nline"\n"",5,"say ""hi"""\n',
    'a,b,c\n00042,2,3\n 7 ,5,\t6\n',
    'a,b,c\n1,2,3',
    'a,b,c\n',
]


def rows(batches):
    return pa.Table.from_batches(list(batches)).to_pylist()


@pytest.mark.parametrize("text", WELL_FORMED)
def test_arrow_and_python_give_the_same_rows_and_numbers(tmp_path, text):
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    assert _arrow_can_read(path, 3)
    assert rows(_arrow_csv_batches(path, 3, POSITIONS, 2)) == rows(
        _python_csv_batches(path, POSITIONS, 2))


def test_values_are_text_as_written_and_empty_is_null(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('a,b,c\n00042,2,""\n 7 ,5,x\n')
    assert rows(csv_batches(path, POSITIONS, 10)) == [
        {"source_row": 1, "raw_a": "00042", "raw_c": None, "malformed": False},
        {"source_row": 2, "raw_a": " 7 ", "raw_c": "x", "malformed": False}]


@pytest.mark.parametrize("text", [
    'a,b,c\n1,2,3\n4,5\n7,8,9\n',           # a short row
    'a,b,c\n1,2,3\n4,5,6,7\n',              # a long row
    'a,b,c\n1,2,3\n\n4,5,6\n',              # a blank line
    'a,b,c\n1,2,3\n   \n4,5,6\n',           # a line of spaces
])
def test_anything_irregular_takes_the_row_by_row_reader(tmp_path, text):
    path = tmp_path / "in.csv"
    path.write_text(text)
    assert not _arrow_can_read(path, 3)


def test_the_row_by_row_reader_flags_ragged_rows_and_skips_blank_lines(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('a,b,c\n1,2,3\n4,5\n\n7,8,9,10\n11,12,13\n')
    assert rows(csv_batches(path, POSITIONS, 2)) == [
        {"source_row": 1, "raw_a": "1", "raw_c": "3", "malformed": False},
        {"source_row": 2, "raw_a": "4", "raw_c": None, "malformed": True},
        {"source_row": 4, "raw_a": "7", "raw_c": "9", "malformed": True},
        {"source_row": 5, "raw_a": "11", "raw_c": "13", "malformed": False}]


def test_undecodable_bytes_become_the_replacement_character(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"a,b,c\nab\xffc,2,3\n")
    assert not _arrow_can_read(path, 3)
    assert rows(csv_batches(path, POSITIONS, 10))[0]["raw_a"] == "ab\ufffdc"


def test_a_gzipped_csv_is_read(tmp_path):
    path = tmp_path / "in.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("a,b,c\n1,2,3\n")
    assert rows(csv_batches(path, POSITIONS, 10)) == [
        {"source_row": 1, "raw_a": "1", "raw_c": "3", "malformed": False}]


def test_a_tsv_is_tab_separated(tmp_path):
    path = tmp_path / "in.tsv"
    path.write_text("a\tb\tc\n1,5\t2\t3\n")
    assert text_formats.csv_header(path) == ["a", "b", "c"]
    assert rows(csv_batches(path, POSITIONS, 10))[0]["raw_a"] == "1,5"

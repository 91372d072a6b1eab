"""CSV and JSON Lines, parsed row by row in Python so that one bad row is one quarantined row.

A row that cannot be read as a record (a CSV row with more or fewer fields than the header, a
JSON Lines line that is not a JSON object) is yielded flagged ``malformed`` with its row number,
and every other row is kept. Values are text exactly as written: ``00042`` stays ``00042``.
Files are opened by name with ``open()``: a name is never a pattern nor part of a query.

Row numbers (``source_row``) count the data rows of a file from 1 (the first row after a CSV
header, the first line of a JSON Lines file), blank lines included, so that without quoted
line breaks ``source_row`` is the line number (minus the CSV header).
"""

from __future__ import annotations

import csv
import gzip
import json
import mmap
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

# A 10 MB customer id must reach validation (and be rejected there as too long), not stop the
# CSV reader; this bounds one field, not a row or a file.
csv.field_size_limit(1 << 30)


class MalformedFileError(ValueError):
    """The file cannot be parsed at all (the message says where)."""


def _open(path: Path) -> IO[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name;
    # undecodable bytes become U+FFFD, which no id or value accepts.
    return opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="")


def _delimiter(path: Path) -> str:
    return "\t" if path.name.lower().endswith(".tsv") else ","


def csv_header(path: Path) -> list[str]:
    with _open(path) as handle:
        try:
            header = next(csv.reader(handle, delimiter=_delimiter(path)), [])
        except csv.Error as exc:
            raise MalformedFileError(f"header: {exc}") from None
    return [name.strip() for name in header]


def csv_batches(path: Path, positions: dict[str, int], chunk_rows: int
                ) -> Iterator[pa.RecordBatch]:
    """Batches of ``source_row``, ``raw_<column>`` (text, empty as null) and ``malformed``,
    ``positions`` giving each output column's field index in the header.

    A well-formed file (every row as wide as the header, no blank line, valid UTF-8,
    uncompressed) is parsed by Arrow's CSV reader; any other by Python's, row by row. Both give
    the same rows and row numbers (tested), Arrow's several times faster.
    """
    width = len(csv_header(path))
    if _arrow_can_read(path, width):
        yield from _arrow_csv_batches(path, width, positions, chunk_rows)
    else:
        yield from _python_csv_batches(path, positions, chunk_rows)


def _arrow_options(path: Path, width: int, columns: list[str], on_invalid=None):
    names = [f"f{i}" for i in range(width)]
    return {
        "read_options": pacsv.ReadOptions(column_names=names, skip_rows=1,
                                          block_size=1 << 24),
        "parse_options": pacsv.ParseOptions(delimiter=_delimiter(path), newlines_in_values=True,
                                            ignore_empty_lines=False,
                                            invalid_row_handler=on_invalid),
        "convert_options": pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, include_columns=columns,
            strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True),
    }


def _arrow_can_read(path: Path, width: int) -> bool:
    """Whether Arrow's reader gives exactly the Python reader's rows: one parse of the file
    that finds no row of another width, no blank line and no undecodable byte."""
    if path.name.lower().endswith(".gz") or width == 0 or path.stat().st_size == 0:
        return False
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m.find(b"\n\n") >= 0 or m.find(b"\n\r\n") >= 0 or m.find(b"\r\r") >= 0:
            return False  # a blank line (or one inside a quoted value: the slow path is safe)
    invalid = []

    def on_invalid(row) -> str:
        invalid.append(row)
        return "skip"

    try:
        # every column converted: a value that is not UTF-8 fails here
        pacsv.read_csv(path, **_arrow_options(path, width, [f"f{i}" for i in range(width)],
                                              on_invalid))
    except (pa.ArrowInvalid, OSError):
        return False
    return not invalid


def _arrow_csv_batches(path: Path, width: int, positions: dict[str, int], chunk_rows: int
                       ) -> Iterator[pa.RecordBatch]:
    wanted = {column: f"f{p}" for column, p in positions.items()}
    reader = pacsv.open_csv(path, **_arrow_options(path, width, sorted(set(wanted.values()))))
    first = 1
    for batch in reader:
        for start in range(0, batch.num_rows, chunk_rows):
            part = batch.slice(start, chunk_rows)
            n = part.num_rows
            arrays = {"source_row": pa.array(range(first, first + n), pa.int64())}
            arrays.update({f"raw_{c}": part.column(f) for c, f in wanted.items()})
            arrays["malformed"] = pa.array([False] * n, pa.bool_())
            first += n
            yield pa.RecordBatch.from_pydict(arrays)
    if first == 1:
        yield _batch([], [], [], positions, empty_is_null=True)


def _python_csv_batches(path: Path, positions: dict[str, int], chunk_rows: int
                        ) -> Iterator[pa.RecordBatch]:
    with _open(path) as handle:
        reader = csv.reader(handle, delimiter=_delimiter(path))
        width = len(next(reader, []))
        first = 1
        yielded = False
        while True:
            try:
                records = list(islice(reader, chunk_rows))
            except csv.Error as exc:
                raise MalformedFileError(f"near line {reader.line_num}: {exc}") from None
            if not records:
                break
            numbers = list(range(first, first + len(records)))
            first += len(records)
            malformed = [False] * len(records)
            odd = [i for i, record in enumerate(records) if len(record) != width]
            if odd:
                blank = {i for i in odd if not records[i]}
                for i in odd:
                    records[i] = (records[i] + [None] * width)[:width]
                    malformed[i] = i not in blank
                keep = [i for i in range(len(records)) if i not in blank]
                records = [records[i] for i in keep]
                numbers = [numbers[i] for i in keep]
                malformed = [malformed[i] for i in keep]
            yielded = True
            yield _batch(numbers, records, malformed, positions, empty_is_null=True)
        if not yielded:
            yield _batch([], [], [], positions, empty_is_null=True)


def jsonl_keys(path: Path) -> list[str]:
    """Every key of every object in the file, in order of first appearance."""
    keys: dict[str, None] = {}
    with _open(path) as handle:
        for line in handle:
            if line.strip():
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                if isinstance(value, dict):
                    keys.update(dict.fromkeys(value))
    return list(keys)


def jsonl_batches(path: Path, names: dict[str, str], chunk_rows: int
                  ) -> Iterator[pa.RecordBatch]:
    """Like :func:`csv_batches`; ``names`` gives each output column's key in the objects.

    Text values are kept as written; numbers, booleans, arrays and objects as their JSON text
    (so a score written as ``0.5`` is ``"0.5"``, and ``true`` fails validation as ``"true"``).
    """
    keys = list(names.values())
    positions = {column: keys.index(key) for column, key in names.items()}
    numbers, records, malformed = [], [], []
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                value = None
            if isinstance(value, dict):
                records.append([_text(value.get(key)) for key in keys])
                malformed.append(False)
            else:
                records.append([None] * len(keys))
                malformed.append(True)
            numbers.append(number)
            if len(records) == chunk_rows:
                yield _batch(numbers, records, malformed, positions, empty_is_null=False)
                numbers, records, malformed = [], [], []
    yield _batch(numbers, records, malformed, positions, empty_is_null=False)


def _text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _batch(numbers, records, malformed, positions: dict[str, int], empty_is_null: bool
           ) -> pa.RecordBatch:
    arrays = {"source_row": pa.array(numbers, pa.int64())}
    for column, position in positions.items():
        values = pa.array([record[position] for record in records], pa.string())
        if empty_is_null:
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        arrays[f"raw_{column}"] = values
    arrays["malformed"] = pa.array(malformed, pa.bool_())
    return pa.RecordBatch.from_pydict(arrays)

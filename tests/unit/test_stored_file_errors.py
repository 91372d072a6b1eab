"""A file that cannot be read or written is one error naming it and the next step: the
libraries' words (DuckDB's, pyarrow's, a full disk's) turned into a StoredFileError, printed by
the command line as one literal line with exit status 2, never a traceback."""

from __future__ import annotations

import errno
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from usage_features.adapters import files
from usage_features.adapters.files import atomic_path, atomic_write
from usage_features.adapters.stored_files import (
    DiskFullError,
    StoredFileError,
    file_error,
    find_damaged,
    next_step,
    one_line,
    reading,
    stored_files,
)
from usage_features.cli import Commands
from usage_features.config import RepoPaths

REPO = Path("/srv/churn/feature_repo")
MONTH = REPO / "data/features/customer_usage/2026-10.parquet"
EVENTS = REPO / "data/events/event_date=2026-11-20/part-1-0.parquet"


def engine_error(name: str, message: str, module: str = "_duckdb") -> Exception:
    """An exception as DuckDB (or pyarrow) raises it: its class's module is the library's."""
    return type(name, (Exception,), {"__module__": module})(message)


class TestTheLibrariesWords:
    @pytest.mark.parametrize(("message", "path", "reason"), [
        (f'Invalid Input Error: Failed to read file "{MONTH}": LZ4 decompression failure',
         MONTH, "LZ4 decompression failure"),
        (f"Invalid Input Error: No magic bytes found at end of file '{EVENTS}'",
         EVENTS, "no Parquet footer at its end (truncated, or not a Parquet file)"),
        (f"Invalid Input Error: File '{EVENTS}' too small to be a Parquet file",
         EVENTS, "too small to be a Parquet file (truncated?)"),
    ])
    def test_duckdb_s_read_errors_name_the_file_and_why(self, message, path, reason):
        found = file_error(engine_error("InvalidInputException", message))
        assert (found.path, found.reason) == (path, reason)
        assert str(found).startswith(f"cannot read {path}: {reason}; ")

    def test_pyarrow_s_open_error_names_the_file(self):
        exc = pa.ArrowInvalid(f"Could not open Parquet input source '{MONTH}': Parquet magic "
                              "bytes not found in footer.")
        found = file_error(exc)
        assert found.path == MONTH and found.reason == "Parquet magic bytes not found in footer."

    def test_a_full_disk_is_named_as_duckdb_names_it(self):
        target = REPO / "data/.build/month=2026-05/part-0-0.parquet"
        exc = engine_error("IOException", (
            'IO Error: Async write failed for range [offset=22698, size=1172]: '
            '{"exception_type":"IO","exception_message":"Could not write file \\"'
            f'{target}\\": No space left on device","errno":"28"}}'))
        found = file_error(exc)
        assert isinstance(found, DiskFullError) and found.path == target
        assert found.errno == errno.ENOSPC and isinstance(found, OSError)
        assert str(found).startswith(f"cannot write {target}: No space left on device; free")

    def test_python_s_full_disk_is_a_disk_full_error(self):
        found = file_error(OSError(errno.ENOSPC, "No space left on device", str(EVENTS)))
        assert isinstance(found, DiskFullError) and found.path == EVENTS

    @pytest.mark.parametrize("exc", [ValueError("bad option"), KeyError("x"),
                                     engine_error("BinderException", "column x not found")])
    def test_any_other_error_is_not_a_file_s(self, exc):
        assert file_error(exc) is None


class TestNextSteps:
    @pytest.mark.parametrize(("path", "words"), [
        (MONTH, f"delete {REPO}/data/features and run `usage-features build --repo {REPO}`"),
        (REPO / "data/features/customer_profile.parquet", "rebuild them"),
        (EVENTS, "restore this file from a backup"),
        (REPO / "data/customers.parquet", "usage-features load-customers FILE"),
        (REPO / "data/scores/date=2026-12-01/scores.parquet", "the next `usage-features refresh"),
        (REPO / "data/models/churn_model_v1.skops", "retrain it"),
        (REPO / "data/reports/churn_model_v1-abc/validation_reference.parquet", "retrain"),
        (Path("/exports/events.parquet"), "check the file"),
    ])
    def test_each_kind_of_file_has_its_own_step(self, path, words):
        assert words in next_step(path)
        assert words in str(StoredFileError(path, "damaged"))


class TestOneLine:
    def test_text_from_a_file_is_one_printable_line(self):
        assert one_line("bad\n  page\x1b[31m\r\n:x: [red]") == "bad page\\x1b[31m :x: [red]"

    def test_a_path_with_control_characters_is_shown_escaped(self):
        error = StoredFileError(Path("/r/da\x1bta/x.parquet"), "bad")
        assert "\x1b" not in str(error) and "\n" not in str(error)


class TestWhereFilesAreRead:
    def test_a_damaged_parquet_file_read_by_pyarrow_is_named(self, tmp_path):
        path = tmp_path / "customers.parquet"
        pq.write_table(pa.table({"a": [1, 2, 3]}), path)
        path.write_bytes(path.read_bytes()[:-20])
        with pytest.raises(StoredFileError) as failed, reading(path):
            pq.read_table(path)
        assert failed.value.path == path and "\n" not in str(failed.value)

    def test_a_missing_file_stays_file_not_found(self, tmp_path):
        with pytest.raises(FileNotFoundError), reading(tmp_path / "none.parquet"):
            pq.read_table(tmp_path / "none.parquet")

    def test_an_error_of_a_use_case_naming_no_file_finds_the_damaged_one(self, tmp_path):
        paths = RepoPaths(tmp_path / "repo")
        month = paths.customer_usage / "2026-10.parquet"
        month.parent.mkdir(parents=True)
        for name in ("2026-09.parquet", "2026-10.parquet"):
            pq.write_table(pa.table({"a": list(range(100))}), month.parent / name)
        data = bytearray(month.read_bytes())
        data[-30:-10] = b"\xff" * 20  # the footer's metadata garbled
        month.write_bytes(bytes(data))

        @stored_files
        def use_case(paths: RepoPaths):
            raise engine_error("Error", "don't know what type: ")

        with pytest.raises(StoredFileError) as failed:
            use_case(paths)
        assert failed.value.path == month
        assert find_damaged(paths.repo)[0] == month

    def test_a_missing_file_is_never_blamed_on_a_damaged_one(self, tmp_path):
        paths = RepoPaths(tmp_path / "repo")
        paths.customer_usage.mkdir(parents=True)
        (paths.customer_usage / "2026-10.parquet").write_bytes(b"not parquet")

        @stored_files
        def use_case(paths: RepoPaths):
            raise FileNotFoundError(f"no customers table in {paths.customers}")

        with pytest.raises(FileNotFoundError):
            use_case(paths)

    def test_a_use_case_s_own_errors_pass_through(self, tmp_path):
        @stored_files
        def use_case(paths):
            raise ValueError("not a file's error")

        with pytest.raises(ValueError, match="not a file's error"):
            use_case(RepoPaths(tmp_path))


class TestAFullDisk:
    def test_an_atomic_write_on_a_full_disk_names_the_target_and_leaves_it(self, tmp_path,
                                                                           monkeypatch):
        target = tmp_path / "_build_state.json"
        target.write_text("old")

        def full(path):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(files, "fsync_file", full)
        with pytest.raises(DiskFullError) as failed:
            atomic_write(target, "new")
        assert failed.value.path == target and target.read_text() == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["_build_state.json"]

    def test_a_writer_s_full_disk_inside_an_atomic_path_names_the_target(self, tmp_path):
        target = tmp_path / "2026-10.parquet"
        with pytest.raises(DiskFullError) as failed, atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
        assert failed.value.path == target and not list(tmp_path.iterdir())


app = typer.Typer(cls=Commands)


@app.command()
def damaged(kind: str) -> None:
    if kind == "duckdb":
        raise engine_error("InvalidInputException",
                           f'Failed to read file "{MONTH}": LZ4 decompression\nfailure')
    if kind == "literal":
        raise StoredFileError(Path("/r/[red]x[/red] :x:.parquet"), "Corrupt :x: [bold]data")
    if kind == "full":
        raise OSError(errno.ENOSPC, "No space left on device")
    raise RuntimeError("a bug")


@app.command()
def other() -> None:
    pass


class TestTheCommandLine:
    @pytest.mark.parametrize("kind", ["duckdb", "literal", "full"])
    def test_a_file_error_is_one_line_and_exit_status_2(self, kind):
        result = CliRunner().invoke(app, ["damaged", kind])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("error: cannot ")

    def test_its_words_are_printed_literally(self):
        result = CliRunner().invoke(app, ["damaged", "literal"])
        assert "/r/[red]x[/red] :x:.parquet: Corrupt :x: [bold]data" in result.stderr

    def test_any_other_error_is_left_as_it_was(self):
        result = CliRunner().invoke(app, ["damaged", "bug"])
        assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)

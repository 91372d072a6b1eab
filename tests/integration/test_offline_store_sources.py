"""How the offline store reads sources: paths as values (never SQL text), clear refusals."""

from __future__ import annotations

from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest
from feast import FileSource

from usage_features.adapters.feast_offline_store.sources import register_source, source_columns


def source_at(path: str, **kwargs) -> FileSource:
    return FileSource(name="s", path=path, timestamp_field="ts", **kwargs)


def test_a_path_with_quotes_and_sql_in_its_name_is_read_as_a_path(tmp_path):
    directory = tmp_path / "it's'); DROP TABLE x; --"
    directory.mkdir()
    pd.DataFrame({"k": [1, 2], "ts": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
                  "raw": [0.5, 1.5]}).to_parquet(directory / "part.parquet")
    con = duckdb.connect()
    columns = register_source(con, SimpleNamespace(repo_path=tmp_path),
                              source_at(directory.name, field_mapping={"raw": "value"}), "v")
    assert columns == ["k", "ts", "value"]
    assert con.sql('SELECT sum("value") FROM "v"').fetchall() == [(2.0,)]


def test_a_missing_source_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        register_source(duckdb.connect(), SimpleNamespace(repo_path=tmp_path),
                        source_at("nowhere.parquet"), "v")


def test_a_remote_source_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="only local paths"):
        register_source(duckdb.connect(), SimpleNamespace(repo_path=tmp_path),
                        source_at("s3://bucket/data.parquet"), "v")


def test_the_columns_from_the_footers_are_duckdb_s_view_s(tmp_path):
    """Retrieval plans from the Parquet footers (no DuckDB): the names register_source gives,
    files of different columns united, the field mapping applied."""
    directory = tmp_path / "parts"
    (directory / "deeper").mkdir(parents=True)
    pd.DataFrame({"k": [1], "ts": pd.to_datetime(["2026-01-01"], utc=True), "raw": [0.5]}
                 ).to_parquet(directory / "a.parquet")
    pd.DataFrame({"k": [2], "ts": pd.to_datetime(["2026-01-02"], utc=True), "extra": [1]}
                 ).to_parquet(directory / "deeper" / "b.parquet")
    config, source = SimpleNamespace(repo_path=tmp_path), source_at(
        "parts", field_mapping={"raw": "value"})
    assert source_columns(config, source) == register_source(duckdb.connect(), config, source,
                                                             "v")
    assert source_columns(config, source) == ["k", "ts", "value", "extra"]


def test_a_source_directory_without_parquet_files_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no Parquet file under"):
        source_columns(SimpleNamespace(repo_path=tmp_path), source_at("empty"))
    with pytest.raises(ValueError, match="does not exist"):
        source_columns(SimpleNamespace(repo_path=tmp_path), source_at("nowhere.parquet"))

"""DuckDB's working memory: ``$USAGE_FEATURES_MEMORY_LIMIT``, or a share of the machine's."""

from __future__ import annotations

import pytest

from usage_features.adapters import duckdb_connection as dc


def applied_limit(con) -> int:
    (text,), = con.execute("SELECT current_setting('memory_limit')").fetchall()
    return dc.parse_memory_size(text.replace(" ", ""))


@pytest.mark.parametrize(("text", "size"), [
    ("4GiB", 4 * 2**30), ("2.5GB", 2_500_000_000), ("800 MiB", 800 * 2**20),
    ("1gib", 2**30), (" 3TB ", 3 * 10**12),
])
def test_sizes_are_parsed_with_their_units(text, size):
    assert dc.parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["4", "lots", "4 GiBs", "-1GB", "1e9B", "10MB", ""])
def test_a_size_without_a_known_unit_or_too_small_is_refused(text):
    with pytest.raises(ValueError, match="USAGE_FEATURES_MEMORY_LIMIT"):
        dc.parse_memory_size(text)


def test_the_variable_sets_every_connections_limit(monkeypatch):
    monkeypatch.setenv(dc.MEMORY_LIMIT_VARIABLE, "1536MiB")
    assert applied_limit(dc.connect()) == 1536 * 2**20


def test_an_invalid_variable_is_an_error_not_a_default(monkeypatch):
    monkeypatch.setenv(dc.MEMORY_LIMIT_VARIABLE, "half")
    with pytest.raises(ValueError, match="not a memory size"):
        dc.connect()


def test_without_the_variable_a_sixth_of_the_machines_memory(monkeypatch):
    monkeypatch.delenv(dc.MEMORY_LIMIT_VARIABLE, raising=False)
    monkeypatch.setattr(dc, "machine_memory", lambda: 24 * 2**30)
    assert dc.memory_limit_bytes() == 4 * 2**30
    assert applied_limit(dc.connect()) == 4 * 2**30
    monkeypatch.setattr(dc, "machine_memory", lambda: 2 * 2**30)
    assert dc.memory_limit_bytes() == 2**30  # never below 1 GiB


def test_the_daily_build_works_in_less_unless_the_variable_says(monkeypatch):
    monkeypatch.delenv(dc.MEMORY_LIMIT_VARIABLE, raising=False)
    monkeypatch.setattr(dc, "machine_memory", lambda: 24 * 2**30)
    assert dc.daily_memory_limit_bytes() == dc.DAILY_MEMORY_LIMIT < dc.memory_limit_bytes()
    applied = applied_limit(dc.connect(memory_limit=dc.daily_memory_limit_bytes()))
    assert applied == pytest.approx(dc.DAILY_MEMORY_LIMIT, rel=0.1)  # (DuckDB shows 1.1 GiB)
    monkeypatch.setattr(dc, "machine_memory", lambda: 4 * 2**30)  # the default is smaller
    assert dc.daily_memory_limit_bytes() == 2**30
    monkeypatch.setenv(dc.MEMORY_LIMIT_VARIABLE, "3GiB")
    assert dc.daily_memory_limit_bytes() == 3 * 2**30


class StopAfterBuild(Exception):
    """Raised by the fake build: the refresh need not go further."""


def test_refresh_builds_in_the_daily_limit(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from usage_features.config import RepoPaths
    from usage_features.service_layer import refresh as refresh_module
    from usage_features.service_layer.ingest import InboxSummary

    limits = []

    def build(*args, memory_limit=None, **kwargs):
        limits.append(memory_limit)
        raise StopAfterBuild

    monkeypatch.setattr(refresh_module, "build", build)
    monkeypatch.setattr(refresh_module, "ingest_inbox", lambda *a: InboxSummary())
    context = SimpleNamespace(paths=RepoPaths(tmp_path), model=None, config="feature_store.yaml")
    with pytest.raises(StopAfterBuild):
        refresh_module.refresh(context)
    assert limits == [dc.daily_memory_limit_bytes()]


def test_the_machines_memory_is_known():
    assert dc.machine_memory() > 2**28


def test_spill_directory_is_created_and_set(tmp_path):
    spill = tmp_path / "data" / ".spill"
    con = dc.connect(spill_to=spill)
    assert spill.is_dir()
    (setting,), = con.execute("SELECT current_setting('temp_directory')").fetchall()
    assert setting == str(spill)

"""Bounded reads: a model or metadata file larger than the limit is refused from its size,
unread (a 3 GiB file: at once, the process's memory unchanged)."""

from __future__ import annotations

import json
import os
import resource

import pytest

from usage_features.training.persistence import (
    DEFAULT_MAX_MODEL_BYTES,
    MAX_MODEL_BYTES_VARIABLE,
    ModelFileError,
    load_model,
    max_model_bytes,
    metadata_path,
)

GIB = 2**30


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def bytes_read() -> int:
    """Bytes this process has read through read(2) and its kin (Linux: /proc/self/io)."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def sparse(path, size: int):
    """A file of ``size`` bytes that takes no disk (``truncate``)."""
    with open(path, "wb"):
        pass
    os.truncate(path, size)
    return path


def with_metadata(model, recorded="0" * 64):
    metadata_path(model).write_text(json.dumps({"model_file_sha256": recorded}))
    return model


def test_the_default_limit_is_512_mib(monkeypatch):
    monkeypatch.delenv(MAX_MODEL_BYTES_VARIABLE, raising=False)
    assert max_model_bytes() == DEFAULT_MAX_MODEL_BYTES == 512 * 2**20


@pytest.mark.parametrize("which", ["model", "metadata"])
def test_a_3_gib_file_is_refused_at_once_without_being_read(tmp_path, monkeypatch, which):
    monkeypatch.delenv(MAX_MODEL_BYTES_VARIABLE, raising=False)
    model = tmp_path / "churn_model_v1.skops"
    if which == "model":
        with_metadata(sparse(model, 3 * GIB))
    else:
        sparse(model, 100)
        sparse(metadata_path(model), 3 * GIB)
    big = model if which == "model" else metadata_path(model)
    peak, read = peak_rss_bytes(), bytes_read()
    with pytest.raises(ModelFileError, match=r"larger .* than a model file may be") as refused:
        load_model(model)
    assert bytes_read() - read < 64 * 2**20  # not read (3 GiB of zeros would count)
    assert peak_rss_bytes() - peak < 64 * 2**20
    message = str(refused.value)
    assert str(big) in message and "3,221,225,472 bytes" in message
    assert MAX_MODEL_BYTES_VARIABLE in message and "\n" not in message


def test_the_limit_is_set_by_the_environment(tmp_path, monkeypatch):
    model = with_metadata(sparse(tmp_path / "m.skops", 2000))
    monkeypatch.setenv(MAX_MODEL_BYTES_VARIABLE, "1999")
    with pytest.raises(ModelFileError, match="larger"):
        load_model(model)
    monkeypatch.setenv(MAX_MODEL_BYTES_VARIABLE, "2000")  # read, then refused for its hash
    with pytest.raises(ModelFileError, match="does not match its metadata"):
        load_model(model)


@pytest.mark.parametrize("value", ["0", "-5", "512MiB", "1e9"])
def test_a_limit_that_is_not_a_positive_number_of_bytes_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(MAX_MODEL_BYTES_VARIABLE, value)
    with pytest.raises(ModelFileError, match="not a positive whole number of bytes"):
        max_model_bytes()

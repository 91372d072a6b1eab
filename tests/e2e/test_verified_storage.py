"""Nothing stored wrong is served wrong: every kind of stored file, its records tampered with
(bytes flipped inside its data, not only its header), is detected or refused by the command that
would read it, and repaired where it can be rebuilt; never answered from in silence.

Each test tampers with a copy of one trained, materialized repo (a repo is copyable: see
docs/operations.md) and compares the answers with the untouched repo's.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo
from tests.factories import churn_dataset
from usage_features.adapters.key_index import key_index_path
from usage_features.adapters.row_sidecar import sidecar_path
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.service_layer.bootstrap import bootstrap

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def invoke(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained repo materialized now, the time its answers are compared at (on a day of
    history: scored from the historical features), and those answers."""
    work = tmp_path_factory.mktemp("verified")
    repo = copy_feature_repo(work / "feature_repo")
    events, customers = churn_dataset(seed=3)
    events.to_parquet(work / "events.parquet", index=False)
    invoke("ingest", work / "events.parquet", "--repo", repo)
    invoke("build", "--repo", repo)
    customers.to_csv(work / "customers.csv", index=False)
    invoke("train", "--repo", repo, "--customers", work / "customers.csv")
    end = _rounded_otherwise_by_pandas(datetime.now(UTC))
    invoke("materialize", "--repo", repo, "--end", end.isoformat())
    as_of = events.timestamp.quantile(0.6).floor("D") + pd.Timedelta(hours=12)
    return repo, as_of, {"as_of": historical_answers(repo, as_of),
                         "online": online_answers(repo, end), "end": end}


def _rounded_otherwise_by_pandas(moment: datetime) -> datetime:
    """The first time from ``moment`` whose pandas ``total_seconds()`` is not its
    ``timestamp()`` (a quarter of times): these tests flaked on such a materialize end, its
    request-time features online and historical differing in the last bit."""
    while True:
        column = pd.Series([pd.Timestamp(moment)]) - pd.Timestamp(0, tz="UTC")
        if column.dt.total_seconds().iloc[0] != moment.timestamp():
            return moment
        moment += timedelta(microseconds=1)


def historical_answers(repo, as_of) -> dict:
    """``score --all --as-of`` on a past day: from the historical features."""
    lines = invoke("score", "--all", "--repo", repo, "--as-of", as_of.isoformat(),
                   "--json").splitlines()
    return {d["customer_id"]: d["churn_probability"] for d in map(json.loads, lines)}


def online_answers(repo, end) -> dict:
    """Every customer scored at the online store's materialize end: from the online store."""
    ids = pd.read_parquet(RepoPaths(repo).customers).customer_id.tolist()
    lines = invoke("score", *ids, "--repo", repo, "--as-of", end.isoformat(),
                   "--json").splitlines()
    return {d["customer_id"]: d["churn_probability"] for d in map(json.loads, lines)}


@pytest.fixture
def copy(trained, tmp_path):
    repo, as_of, want = trained
    target = tmp_path / "repo"
    shutil.copytree(repo, target, symlinks=True)
    return target, as_of, want


def month_of(repo, as_of) -> object:
    """The month file holding the rows ``as_of`` is answered from."""
    return RepoPaths(repo).customer_usage / f"{as_of:%Y-%m}.parquet"


def flip(path, offsets) -> None:
    """XOR one byte at each offset (the file's size unchanged)."""
    data = bytearray(path.read_bytes())
    for offset in offsets:
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def chunk_middles(path) -> list[int]:
    """The middle byte of every column chunk of a Parquet file (its data, not its footer)."""
    metadata = pq.ParquetFile(path).metadata
    out = []
    for g in range(metadata.num_row_groups):
        for c in range(metadata.num_columns):
            column = metadata.row_group(g).column(c)
            start = column.dictionary_page_offset or column.data_page_offset
            out.append(start + column.total_compressed_size // 2)
    return out


def sidecar_records(path) -> list[int]:
    """One byte in the middle of each record of a row sidecar (its header left alone)."""
    data = path.read_bytes()
    length = int.from_bytes(data[8:16], "little")
    header = json.loads(data[16:16 + length])
    start = 16 + length
    size = (len(data) - start) // header["rows"]
    return [start + r * size + size // 2 for r in range(header["rows"])]


def refused(result, *names: str, answers: bool = False) -> None:
    """A one-line error naming each of ``names``, exit status 2, and no answer printed
    (``answers``: a command whose output is no answer, Feast's progress)."""
    assert result.exit_code == 2, result.output
    assert answers or result.stdout == ""
    error = result.stderr.strip()
    assert error.startswith("error:") and "Traceback" not in error, error
    for name in names:
        assert name in " ".join(error.split()), (name, error)


def build_repairs(repo, *names: str) -> dict:
    result = run("build", "--repo", repo)
    assert result.exit_code == 0, result.output
    repaired = [line for line in result.stdout.splitlines() if line.startswith("repaired:")]
    for name in names:
        assert any(name in line for line in repaired), (name, result.stdout)
    assert "up to date" not in result.stdout
    summary = json.loads(invoke("build", "--repo", repo, "--json"))
    assert summary["repaired"] == [] and not summary["changed"]
    return summary


def verified(repo, *args: str):
    result = run("verify", "--repo", repo, *args)
    return result.exit_code, result.stdout


class TestTheIssuesCases:
    def test_one_byte_flipped_in_each_record_of_a_month_s_sidecar_is_refused_then_rebuilt(
            self, copy):
        repo, as_of, want = copy
        car = sidecar_path(month_of(repo, as_of))
        offsets = sidecar_records(car)
        size = car.stat().st_size
        flip(car, offsets)
        assert car.stat().st_size == size and len(offsets) > 100

        refused(run("score", "--all", "--repo", repo, "--as-of", as_of.isoformat()),
                car.name, "usage-features build")
        entities = repo.parent / "entities.csv"
        pd.DataFrame({"customer_id": sorted(want["as_of"]), "event_timestamp": as_of}
                     ).to_csv(entities, index=False)
        refused(run("predict", "--entities", entities, "--out", repo.parent / "out.csv",
                    "--repo", repo), car.name)
        code, report = verified(repo)
        assert code == 1 and car.name in report

        build_repairs(repo, car.name)
        assert historical_answers(repo, as_of) == want["as_of"]
        assert verified(repo)[0] == 0

    def test_the_http_service_answers_503_naming_the_damaged_file(self, copy):
        from fastapi.testclient import TestClient  # the serve extra, for this test only

        from usage_features.http.app import create_app

        repo, as_of, want = copy
        client = TestClient(create_app(bootstrap(repo).scorer))
        body = {"customer_ids": sorted(want["as_of"])[:5], "as_of": as_of.isoformat()}
        assert client.post("/score", json=body).status_code == 200
        car = sidecar_path(month_of(repo, as_of))
        flip(car, sidecar_records(car))

        response = client.post("/score", json=body)

        assert response.status_code == 503
        assert car.name in response.json()["detail"]
        assert "usage-features build" in response.json()["detail"]

    def test_health_answers_503_naming_a_damaged_build_state(self, copy):
        from fastapi.testclient import TestClient  # the serve extra, for this test only

        from usage_features.http.app import create_app

        repo, _, _ = copy
        client = TestClient(create_app(bootstrap(repo).scorer))
        assert client.get("/health").status_code == 200
        state = RepoPaths(repo).build_state
        flip(state, [len(state.read_bytes()) // 2])
        response = client.get("/health")
        assert response.status_code == 503
        assert state.name in response.json()["detail"]

    def test_a_deleted_month_is_refused_then_rebuilt_to_every_feature_row(self, copy):
        repo, as_of, want = copy
        rows = json.loads(invoke("build", "--repo", repo, "--json"))["feature_rows"]
        month = month_of(repo, as_of)
        month.unlink()
        sidecar_path(month).unlink()

        refused(run("score", "--all", "--repo", repo, "--as-of", as_of.isoformat()),
                month.name, "missing", "usage-features build")
        refused(run("materialize", "--repo", repo), month.name, answers=True)

        summary = build_repairs(repo, month.name)
        assert summary["feature_rows"] == rows
        assert historical_answers(repo, as_of) == want["as_of"]

    def test_refresh_repairs_a_deleted_month_and_raises_an_alarm(self, copy):
        repo, as_of, want = copy
        month = month_of(repo, as_of)
        month.unlink()
        sidecar_path(month).unlink()
        (repo.parent / "inbox").mkdir()

        result = run("refresh", "--repo", repo, "--inbox", repo.parent / "inbox", "--json")

        assert result.exit_code == 1, result.output
        summary = json.loads(result.stdout)
        assert any(a.startswith("repaired:") and month.name in a for a in summary["alarms"])
        assert month.exists() and historical_answers(repo, as_of) == want["as_of"]


class TestTampering:
    """Bytes flipped inside the records of each kind of stored file."""

    def test_a_feature_month_file(self, copy):
        repo, as_of, want = copy
        month = month_of(repo, as_of)
        flip(month, chunk_middles(month))

        # a retrieval reads none of its bytes (the matches from the key index, the values
        # from the row sidecar, each checked): right answers; a scan of it is refused
        assert historical_answers(repo, as_of) == want["as_of"]
        refused(run("materialize", "--repo", repo), month.name, answers=True)
        code, report = verified(repo)
        assert code == 1 and f"problem: [feature tables] {month}" in report

        code, report = verified(repo, "--repair")  # a build, from the event log
        assert code == 0 and f"repaired: [feature tables] {month}" in report, report
        assert historical_answers(repo, as_of) == want["as_of"]
        assert verified(repo)[0] == 0

    def test_a_key_index(self, copy):
        repo, as_of, want = copy
        keys = key_index_path(month_of(repo, as_of))
        data = keys.read_bytes()
        flip(keys, range(len(data) // 2, len(data), 97))  # its arrays, not only its header

        refused(run("score", "--all", "--repo", repo, "--as-of", as_of.isoformat()),
                keys.name, "differs from what was written")
        code, report = verified(repo)
        assert code == 1 and f"problem: [feature tables] {keys}" in report

        build_repairs(repo, keys.name)
        assert historical_answers(repo, as_of) == want["as_of"]
        assert verified(repo)[0] == 0

    def test_the_build_state(self, copy):
        repo, as_of, want = copy
        state = RepoPaths(repo).build_state
        text = state.read_text()
        at = text.index('"rows": ') + len('"rows": ')  # a digit of a month's row count
        flip(state, [at])

        refused(run("score", "--all", "--repo", repo, "--as-of", as_of.isoformat()),
                "_build_state.json")
        code, report = verified(repo)
        assert code == 1 and "_build_state.json" in report

        build_repairs(repo, "_build_state.json")
        assert historical_answers(repo, as_of) == want["as_of"]

    def test_an_event_log_file(self, copy):
        repo, as_of, _want = copy
        paths = RepoPaths(repo)
        day = paths.events / f"event_date={as_of:%Y-%m-%d}"
        (logged,) = day.glob("*.parquet")
        flip(logged, chunk_middles(logged))

        code, report = verified(repo)
        assert code == 1
        line = next(line for line in report.splitlines() if logged.name in line)
        assert "cannot be rebuilt" in line and "events.parquet" in line  # the input to re-ingest
        assert verified(repo, "--repair")[0] == 1  # the source of truth: not repaired

        # a build that must read it refuses, naming it (here: the state lost, a full rebuild)
        paths.build_state.unlink()
        result = run("build", "--repo", repo)
        assert result.exit_code == 2 and logged.name in result.output, result.output
        assert "events.parquet" in " ".join(result.output.split())

    def test_an_online_store_row(self, copy):
        repo, _as_of, want = copy
        customer = _flip_a_customer_s_online_values(repo)
        tampered = online_answers(repo, want["end"])
        assert tampered[customer] != want["online"][customer]  # served wrong until verified

        code, report = verified(repo)
        assert code == 1 and "[online store]" in report and "1 of" in report, report

        code, report = verified(repo, "--repair")
        assert code == 0, report
        assert "repaired: [online store]" in report
        assert online_answers(repo, want["end"]) == want["online"]

    def test_a_model_file(self, copy):
        repo, as_of, _want = copy
        model = RepoPaths(repo).model
        data = model.read_bytes()
        flip(model, [len(data) // 3, len(data) // 2])  # inside the archive's entries

        refused(run("score", "--all", "--repo", repo, "--as-of", as_of.isoformat()),
                model.name, "does not match its metadata")
        code, report = verified(repo)
        assert code == 1 and "[model]" in report and model.name in report
        assert verified(repo, "--repair")[0] == 1  # retrain or restore: not rebuilt


def _flip_a_customer_s_online_values(repo) -> str:
    """Flip one byte of each stored feature value of one active customer in the SQLite file
    (the file itself, not through SQL), each value still a valid one of its type; the
    customer."""
    database = RepoPaths(repo).data / "online_store.db"
    con = sqlite3.connect(database)
    try:
        table = next(name for (name,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")
            if name.endswith("customer_usage"))
        rows = con.execute(f"SELECT entity_key, feature_name, value FROM {table}").fetchall()
    finally:
        con.close()
    active = pd.read_parquet(RepoPaths(repo).customers).query("churned_at.isna()")
    customer = active.customer_id.iloc[0]
    key_end = len(customer).to_bytes(4, "little") + customer.encode()  # its serialized id
    data = database.read_bytes()
    # each value's last byte: a varint's (its high bit stays 0) or a double's sign/exponent
    offsets = [data.index(key + feature.encode() + value) + len(key) + len(feature)
               + len(value) - 1 for key, feature, value in rows
               if key.endswith(key_end) and value]
    assert len(offsets) > 10
    flip(database, offsets)
    return customer

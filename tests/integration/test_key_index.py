"""The key index answers a month file's point-in-time match exactly, or not at all.

Against brute force (pandas over the file's rows) on a month of odd ids and times; the writer
declines a file it cannot describe; retrieval through the store gives the same frame by the
index as by DuckDB's scan, and a damaged index is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import copy_feature_repo, populate
from tests.factories import churn_dataset
from usage_features.adapters import key_index
from usage_features.adapters.checksums import DamagedFileError
from usage_features.adapters.feast_offline_store import point_in_time as pit
from usage_features.adapters.key_index import (
    DAY_US,
    KeyIndex,
    encode_keys,
    key_index_path,
    popcount,
    write_key_index,
)
from usage_features.config import RepoPaths
from usage_features.features.retrieval import historical_features
from usage_features.features.store import open_store

MONTH = pd.Timestamp("2024-02-01", tz="UTC")  # a leap February: 29 days
IDS = ["a", "a b", "ä/ö", "A", "zz", "%2F", "=1+1", "x" * 40, "b\tc", ""]


def month_rows(seed: int) -> pd.DataFrame:
    """Rows of a sorted month file: each id on a random set of the month's days."""
    rng = np.random.default_rng(seed)
    frames = [pd.DataFrame({"customer_id": c, "feature_timestamp": MONTH + pd.to_timedelta(
        np.sort(rng.choice(29, rng.integers(1, 12), replace=False)), "D")}) for c in IDS]
    rows = pd.concat(frames, ignore_index=True)
    rows["value"] = rng.random(len(rows))
    order = np.argsort(rows.customer_id.map(lambda c: c.encode()).to_numpy(), kind="stable")
    return rows.iloc[order].reset_index(drop=True)


def write(rows: pd.DataFrame, path) -> dict | None:
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path)
    return write_key_index(path, "customer_id", "feature_timestamp")


def brute_force(rows: pd.DataFrame, key, t) -> tuple[int, pd.Timestamp | None]:
    """The file row of ``key``'s latest row at or before ``t``, and its time (-1, None)."""
    candidates = rows[(rows.customer_id == key) & (rows.feature_timestamp <= t)]
    if candidates.empty:
        return -1, None
    row = candidates.feature_timestamp.idxmax()
    return int(row), rows.feature_timestamp[row]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_latest_matches_brute_force_on_every_edge(tmp_path, seed):
    rows = month_rows(seed)
    record = write(rows, tmp_path / "2024-02.parquet")
    index = KeyIndex.read(tmp_path / "2024-02.parquet", record)
    rng = np.random.default_rng(seed)
    stamps = rows.feature_timestamp
    times = [*stamps, *(stamps - pd.Timedelta(microseconds=1)),
             *(stamps + pd.Timedelta(hours=23, minutes=59)), MONTH - pd.Timedelta(days=1),
             MONTH + pd.Timedelta(days=29), MONTH + pd.Timedelta(days=400),
             *(MONTH + pd.to_timedelta(rng.integers(-2 * 86_400, 31 * 86_400, 200), "s"))]
    keys = [*rows.customer_id] * 3 + list(rng.choice([*IDS, "nobody", "a "], len(times)
                                                     - 3 * len(rows)))
    entity = pd.DataFrame({"key": keys, "t": pd.to_datetime(times, utc=True)})

    micros = entity.t.astype("datetime64[us, UTC]").dt.tz_localize(None).to_numpy()
    found, at = index.latest(encode_keys(pa.array(entity.key)), micros.view("int64"))

    want = [brute_force(rows, k, t) for k, t in zip(entity.key, entity.t)]
    assert found.tolist() == [w[0] for w in want]
    got_times = [None if a < 0 else pd.Timestamp(a, unit="us", tz="UTC") for a in at]
    assert got_times == [w[1] for w in want]
    assert (found >= 0).sum() > 100 and (found < 0).sum() > 10  # both cases covered


@pytest.mark.parametrize("change", ["unsorted", "not a day start", "two months",
                                    "two rows a day", "a NUL in an id", "a null id"])
def test_a_file_the_index_cannot_describe_gets_none(tmp_path, change):
    rows = month_rows(0)
    if change == "unsorted":
        rows = rows.iloc[::-1].reset_index(drop=True)
    elif change == "not a day start":
        rows.loc[3, "feature_timestamp"] += pd.Timedelta(seconds=1)
    elif change == "two months":
        rows.loc[len(rows) - 1, "feature_timestamp"] = MONTH + pd.Timedelta(days=29)
    elif change == "two rows a day":
        rows.loc[1, "feature_timestamp"] = rows.loc[0, "feature_timestamp"]
        rows.loc[1, "customer_id"] = rows.loc[0, "customer_id"]
    elif change == "a NUL in an id":
        rows["customer_id"] = rows.customer_id.replace({"zz": "z\x00"})
    elif change == "a null id":
        rows["customer_id"] = rows.customer_id.replace({"zz": None})

    assert write(rows, tmp_path / "2024-02.parquet") is None
    assert not key_index_path(tmp_path / "2024-02.parquet").exists()


def test_popcount_counts_bits():
    values = np.random.default_rng(0).integers(0, 2**32, 10_000, dtype=np.uint64)
    want = [bin(int(v)).count("1") for v in values]
    assert popcount(values).tolist() == want


def test_a_changed_byte_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "2024-02.parquet"
    record = write(month_rows(0), path)
    data = bytearray(key_index_path(path).read_bytes())
    data[-3] ^= 0x01
    key_index_path(path).write_bytes(bytes(data))

    with pytest.raises(DamagedFileError, match="SHA-256") as refused:
        KeyIndex.read(path, record)
    assert ".2024-02.keys" in str(refused.value)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    repo = copy_feature_repo(tmp_path_factory.mktemp("keys") / "feature_repo")
    events, customers = churn_dataset(seed=5, customers=40, days=150)
    populate(repo, events, customers)
    return repo, events


def test_retrieval_by_the_index_equals_retrieval_by_the_scan(built, monkeypatch):
    repo, events = built
    rng = np.random.default_rng(0)
    ids = [*events.customer_id.unique(), "nobody"]
    start, end = events.timestamp.min().floor("D"), events.timestamp.max().ceil("D")
    days = pd.date_range(start, end, freq="D", tz="UTC")
    times = [*days, *(days - pd.Timedelta(microseconds=1)),
             *(start + pd.to_timedelta(rng.integers(-86_400, (end - start).total_seconds(),
                                                     300), "s"))]
    entity = pd.DataFrame({"customer_id": rng.choice(ids, len(times)),
                           "event_timestamp": pd.to_datetime(times, utc=True)})
    used = []
    latest = KeyIndex.latest
    monkeypatch.setattr(KeyIndex, "latest", lambda self, *a: used.append(1) or latest(self, *a))

    keyed = historical_features(open_store(repo), entity)
    assert used, "the key index was not used"
    monkeypatch.setattr(pit, "KEYED_ROWS_PER_ENTITY_ROW", 10**9)  # never by the index
    used.clear()
    scanned = historical_features(open_store(repo), entity)

    assert not used
    pd.testing.assert_frame_equal(keyed, scanned)


def one_month_entity(repo, events) -> tuple[str, pd.DataFrame]:
    """A middle month's name, and entity rows at its 28th day for every customer with an
    event in the 27 days before."""
    months = sorted(RepoPaths(repo).customer_usage.glob("*.parquet"))
    middle = months[len(months) // 2].stem
    moment = pd.Timestamp(f"{middle}-01", tz="UTC") + pd.Timedelta(days=27)
    active = events[(events.timestamp >= moment - pd.Timedelta(days=27))
                    & (events.timestamp <= moment)].customer_id.unique()
    assert len(active) > 5
    return middle, pd.DataFrame({"customer_id": active, "event_timestamp": moment})


def test_only_the_months_a_retrieval_needs_are_read(built, monkeypatch):
    """Every entity row finds its row in one month: that month's index alone is read (not
    the later months', nor the earlier ones'), and the answer is the scan's."""
    repo, events = built
    middle, entity = one_month_entity(repo, events)
    read = []
    real = KeyIndex.read.__func__
    monkeypatch.setattr(KeyIndex, "read", classmethod(
        lambda cls, path, record: read.append(path.stem) or real(cls, path, record)))
    keyed = historical_features(open_store(repo), entity)
    assert read == [middle]
    monkeypatch.setattr(pit, "KEYED_ROWS_PER_ENTITY_ROW", 10**9)  # never by the index
    pd.testing.assert_frame_equal(keyed, historical_features(open_store(repo), entity))


def test_an_index_of_another_month_than_its_file_name_says_is_not_used(built, monkeypatch):
    repo, events = built
    _, entity = one_month_entity(repo, events)
    named = key_index.named_month_start_us
    assert named(Path("x/2025-03.parquet")) == int(
        pd.Timestamp("2025-03-01", tz="UTC").timestamp()) * 10**6
    assert named(Path("x/profile.parquet")) is None
    monkeypatch.setattr(pit, "named_month_start_us", lambda path: named(path) - DAY_US)
    used = []
    latest = KeyIndex.latest
    monkeypatch.setattr(KeyIndex, "latest", lambda self, *a: used.append(1) or latest(self, *a))
    got = historical_features(open_store(repo), entity)
    assert not used  # the first index read disagrees with its name: the scan answers
    monkeypatch.setattr(pit, "KEYED_ROWS_PER_ENTITY_ROW", 10**9)
    pd.testing.assert_frame_equal(got, historical_features(open_store(repo), entity))

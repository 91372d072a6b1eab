"""Pruned historical retrieval returns exactly what the plain ASOF join returns.

The pruned join reads only the view rows whose keys occur in the entity rows and whose time can
match (at most the latest entity time; with a ttl, at least the earliest minus the ttl), then
fetches the feature columns of just the matched rows. Here both paths run on the same rows,
value by value, with entity rows on every edge of the pruned range, and against brute force.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from usage_features.adapters import row_sidecar
from usage_features.adapters.duckdb_connection import connect
from usage_features.adapters.feast_offline_store import point_in_time as pit
from usage_features.adapters.row_sidecar import write_sidecar

US = pd.Timedelta(microseconds=1)
T0 = pd.Timestamp("2025-01-01", tz="UTC")


def feature_rows(seed: int, customers: int = 25, per_customer: int = 40) -> pd.DataFrame:
    """Distinct (customer, time) rows, times to the microsecond, with nulls among the values."""
    rng = np.random.default_rng(seed)
    frames = []
    for c in range(customers):
        offsets = np.sort(rng.choice(400 * 86_400_000_000, per_customer, replace=False))
        frames.append(pd.DataFrame({
            "cid": f"c{c:03d}", "region": f"r{c % 3}",
            "ts": T0 + pd.to_timedelta(offsets, "us"),
        }))
    rows = pd.concat(frames, ignore_index=True)
    rows["count"] = rng.integers(0, 1000, len(rows))
    rows["score"] = np.where(rng.random(len(rows)) < 0.1, np.nan, rng.random(len(rows)))
    return rows.sample(frac=1, random_state=seed).reset_index(drop=True)  # files are unsorted


def entity_rows(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Random rows, and rows on each edge: at a feature row's time and 1 µs either side, the
    latest entity time exactly on a feature row (the upper bound of the pruned range), before
    every row, unknown customers, customers whose rows all lie after the latest entity time."""
    rng = np.random.default_rng(seed)
    picked = rows.sample(40, random_state=seed)
    edges = pd.concat([picked.ts, picked.ts - US, picked.ts + US], ignore_index=True)
    customers = pd.concat([picked.cid] * 3, ignore_index=True)
    random_t = T0 + pd.to_timedelta(rng.integers(0, 420 * 86_400_000_000, 60), "us") \
        - pd.Timedelta(days=5)
    late = rows[rows.cid == "c024"].ts.min() - US  # c024's rows all lie after the latest time
    frame = pd.DataFrame({
        "customer": [*customers, *rng.choice(rows.cid.unique()[:20], 60), "nobody", "c024",
                     "c000"],
        "t": [*edges, *random_t, T0, late, T0 - pd.Timedelta(days=1)],
    })
    frame["t"] = pd.to_datetime(frame.t, utc=True)
    cap = rows[rows.cid != "c024"].ts.max()  # the latest entity time: exactly a feature row's
    frame = frame[frame.t <= cap]
    frame = pd.concat([frame, pd.DataFrame({"customer": [rows.loc[rows.ts == cap, "cid"].iloc[0]],
                                            "t": [cap]})], ignore_index=True)
    frame["region"] = frame.customer.map(dict(zip(rows.cid, rows.region))).fillna("r0")
    return frame


def join(rows: pd.DataFrame, entity: pd.DataFrame, prune: bool, ttl=None,
         two_keys: bool = False) -> pd.DataFrame:
    con = connect()
    con.register("v0", pa.Table.from_pandas(rows, preserve_index=False))
    keys = {"cid": "customer", "region": "region"} if two_keys else {"cid": "customer"}
    view = pit.ViewJoin(name="v", alias="v0", keys=keys, timestamp="ts", created=None,
                        features=[("count", "count"), ("score", "score"), ("ts", "row_ts")],
                        ttl=ttl)
    table = pa.table({
        pit.ROW: pa.array(range(len(entity)), pa.int64()),
        pit.TS: pa.array(entity.t).cast(pa.timestamp("us", tz="UTC")),
        "customer": pa.array(entity.customer), "region": pa.array(entity.region),
    })
    return pit.join(con, table, [view], prune=prune).to_pandas()


def brute_force(rows: pd.DataFrame, entity: pd.DataFrame, ttl=None) -> pd.DataFrame:
    out = []
    for customer, t in zip(entity.customer, entity.t):
        mine = rows[(rows.cid == customer) & (rows.ts <= t)]
        if ttl is not None:
            mine = mine[mine.ts >= t - ttl]
        best = mine.loc[mine.ts.idxmax()] if len(mine) else None
        out.append({"count": None if best is None else best["count"],
                    "score": None if best is None else best["score"],
                    "row_ts": None if best is None else best["ts"]})
    return pd.DataFrame(out)


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(actual) == len(expected)
    for column in ("count", "score", "row_ts"):
        got, want = actual[column].tolist(), expected[column].tolist()
        for i, (a, b) in enumerate(zip(got, want)):
            assert (pd.isna(a) and pd.isna(b)) or a == b, (column, i, a, b)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pruned_equals_unpruned_and_brute_force_value_by_value(seed):
    rows = feature_rows(seed)
    entity = entity_rows(rows, seed)
    pruned, plain = join(rows, entity, prune=True), join(rows, entity, prune=False)
    assert_same(pruned, plain)
    assert_same(pruned, brute_force(rows, entity))
    # the edges are there: matches exactly on the latest entity time, misses and nulls
    assert (pruned.row_ts == entity.t.max()).any()
    assert pruned.row_ts.isna().sum() >= 3


def test_with_a_ttl_the_earliest_time_minus_the_ttl_is_kept_and_older_is_stale():
    rows = feature_rows(4)
    entity = entity_rows(rows, 4)
    ttl = timedelta(days=20)
    earliest = entity.t.min()
    # a row exactly at (earliest - ttl) is fresh for the earliest entity row; 1 µs older is not
    edge = pd.DataFrame({"cid": ["c001", "c002"], "region": ["r1", "r2"],
                         "ts": [earliest - ttl, earliest - ttl - US], "count": [7, 8],
                         "score": [0.5, 0.25]})
    rows = pd.concat([rows[~rows.cid.isin(["c001", "c002"]) | (rows.ts > earliest)], edge],
                     ignore_index=True)
    entity = pd.concat([entity, pd.DataFrame({"customer": ["c001", "c002"], "t": [earliest] * 2,
                                              "region": ["r1", "r2"]})], ignore_index=True)
    pruned, plain = join(rows, entity, True, ttl), join(rows, entity, False, ttl)
    assert_same(pruned, plain)
    assert_same(pruned, brute_force(rows, entity, ttl))
    assert pruned["count"].iloc[-2] == 7 and pd.isna(pruned["count"].iloc[-1])


def test_two_join_keys_prune_on_both():
    rows = feature_rows(5)
    entity = entity_rows(rows, 5)
    entity.loc[entity.index[::7], "region"] = "r9"  # a key pair with no rows
    pruned, plain = join(rows, entity, True, two_keys=True), join(rows, entity, False,
                                                                   two_keys=True)
    assert_same(pruned, plain)
    assert pruned.loc[entity.region.to_numpy() == "r9", "count"].isna().all()


def test_tied_rows_give_one_of_the_tied_values_and_one_row_per_entity_row():
    rows = feature_rows(6, customers=3, per_customer=5)
    tie = rows.iloc[[0]].assign(count=-1)
    rows = pd.concat([rows, tie], ignore_index=True)
    entity = pd.DataFrame({"customer": [tie.cid.iloc[0]] * 2, "region": ["r0"] * 2,
                           "t": [tie.ts.iloc[0], tie.ts.iloc[0] + US]})
    pruned = join(rows, entity, True)
    assert len(pruned) == 2
    assert set(pruned["count"]) <= {-1, rows["count"].iloc[0]}


def test_no_entity_rows_and_null_times_are_joined_too():
    rows = feature_rows(7, customers=3, per_customer=5)
    empty = pd.DataFrame({"customer": pd.Series([], dtype=str), "region": pd.Series([], dtype=str),
                          "t": pd.Series([], dtype="datetime64[us, UTC]")})
    assert len(join(rows, empty, True)) == 0
    nulls = pd.DataFrame({"customer": ["c000"], "region": ["r0"],
                          "t": pd.Series([pd.NaT], dtype="datetime64[us, UTC]")})
    assert join(rows, nulls, True)["count"].isna().all()


class TestRowSidecars:
    """Pass 2 from the row sidecars (:mod:`usage_features.adapters.row_sidecar`) gives what the
    Parquet scan gives, value by value; a sidecar the Parquet file no longer matches is not read."""

    @staticmethod
    def files(rows: pd.DataFrame, directory) -> tuple:
        paths = []
        for i, part in enumerate(np.array_split(np.arange(len(rows)), 3)):
            path = directory / f"part-{i}.parquet"
            rows.iloc[part].to_parquet(path, index=False)
            write_sidecar(path)
            paths.append(path)
        return tuple(paths)

    @staticmethod
    def join(files: tuple, entity: pd.DataFrame, prune: bool = True,
             features: tuple[str, ...] = ("count", "score"), ttl=None) -> pd.DataFrame:
        return TestRowSidecars.arrow_join(files, entity, prune, features, ttl).to_pandas()

    @staticmethod
    def arrow_join(files: tuple, entity: pd.DataFrame, prune: bool = True,
                   features: tuple[str, ...] = ("count", "score"), ttl=None) -> pa.Table:
        con = connect()
        con.read_parquet([str(f) for f in files]).create_view("v0")
        view = pit.ViewJoin(name="v", alias="v0", keys={"cid": "customer"}, timestamp="ts",
                            created=None, features=[*((f, f) for f in features),
                                                    ("ts", "row_ts")], ttl=ttl, files=files)
        table = pa.table({
            pit.ROW: pa.array(range(len(entity)), pa.int64()),
            pit.TS: pa.array(entity.t).cast(pa.timestamp("us", tz="UTC")),
            "customer": pa.array(entity.customer), "region": pa.array(entity.region),
        })
        return pit.join(con, table, [view], prune=prune)

    @pytest.mark.parametrize("ttl", [None, timedelta(days=20)])
    def test_rows_put_together_without_duckdb_equal_its_join_type_for_type(
            self, tmp_path, taken, monkeypatch, ttl):
        rows = feature_rows(4)
        stamps = rows.ts.astype("datetime64[us, UTC]")
        rows = rows.assign(
            small=(rows["count"] % 100).astype("int8"), ratio=rows.score.astype("float32"),
            flag=rows["count"] % 2 == 0, day=stamps.dt.date,
            nanos=stamps.astype("datetime64[ns, UTC]"), naive=stamps.dt.tz_localize(None),
            millis=stamps.astype("datetime64[ms, UTC]"))  # the last: DuckDB changes its type
        entity = entity_rows(rows, 4)
        if ttl is not None:  # each customer's last row exactly ttl old, and 1 µs older
            last = rows.loc[rows.groupby("cid").ts.idxmax()]
            entity = pd.concat([entity, *(pd.DataFrame({
                "customer": last.cid, "region": last.region, "t": last.ts + ttl + extra})
                for extra in (pd.Timedelta(0), US))], ignore_index=True)
        files = self.files(rows, tmp_path)
        features = ("count", "score", "small", "ratio", "flag", "day", "nanos", "naive")
        assembled = []
        real = pit._assemble
        monkeypatch.setattr(pit, "_assemble", lambda *a: assembled.append(1) or real(*a))

        together = self.arrow_join(files, entity, features=features, ttl=ttl)
        with_millis = self.arrow_join(files, entity, features=(*features, "millis"), ttl=ttl)
        assert len(assembled) == 1  # not with the millisecond column: joined by DuckDB
        monkeypatch.setattr(pit, "_same_through_duckdb", lambda kind: False)
        joined = self.arrow_join(files, entity, features=features, ttl=ttl)

        assert len(assembled) == 1
        assert together.equals(joined) and together.schema == joined.schema
        assert with_millis.drop_columns(["millis"]).equals(joined)
        expected = brute_force(rows, entity, ttl)
        assert_same(together.to_pandas(), expected)
        if ttl is not None:  # the ttl nulls rows the plain join fills
            assert expected.row_ts.isna().sum() > brute_force(rows, entity).row_ts.isna().sum()

    @pytest.fixture
    def taken(self, monkeypatch) -> list[int]:
        """Sidecars read whatever the entity rows; the rows each take fetched."""
        monkeypatch.setattr(pit, "SIDECAR_ROWS_PER_ENTITY_ROW", 0)
        calls: list[int] = []
        real = row_sidecar.Sidecar.take
        monkeypatch.setattr(row_sidecar.Sidecar, "take",
                            lambda self, rows, columns: calls.append(len(rows))
                            or real(self, rows, columns))
        return calls

    @pytest.mark.parametrize("seed", [1, 2])
    def test_sidecar_rows_equal_the_parquet_scan_and_brute_force(self, tmp_path, taken, seed):
        rows = feature_rows(seed)
        entity = entity_rows(rows, seed)
        files = self.files(rows, tmp_path)

        fetched = self.join(files, entity)

        assert sum(taken) == fetched.row_ts.notna().sum() > 100
        assert_same(fetched, join(rows, entity, prune=False))
        assert_same(fetched, brute_force(rows, entity))

    def test_a_sidecar_older_than_its_parquet_file_is_not_read(self, tmp_path, taken):
        rows = feature_rows(3)
        entity = entity_rows(rows, 3)
        files = self.files(rows, tmp_path)
        changed = pd.read_parquet(files[0]).assign(count=-5)
        changed.to_parquet(files[0], index=False)  # rewritten without its sidecar
        rows = pd.concat([changed, *(pd.read_parquet(f) for f in files[1:])], ignore_index=True)

        got = self.join(files, entity)

        assert taken == []
        assert_same(got, brute_force(rows, entity))
        assert (got["count"] == -5).any()

    def test_a_file_replaced_while_retrieval_reads_it_is_joined_from_parquet(
            self, tmp_path, taken, monkeypatch):
        rows = feature_rows(5)
        entity = entity_rows(rows, 5)
        files = self.files(rows, tmp_path)
        changed = pd.read_parquet(files[1]).assign(count=-7)
        real = pit.ViewJoin.matches_sql

        def replaced_meanwhile(view, bounds, located=None):
            sql = real(view, bounds, located)
            if located:  # the sidecars are open: a writer replaces a file now
                changed.to_parquet(files[1], index=False)
            return sql

        monkeypatch.setattr(pit.ViewJoin, "matches_sql", replaced_meanwhile)
        got = self.join(files, entity)

        assert taken == []
        rows = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        assert_same(got, brute_force(rows, entity))
        assert (got["count"] == -7).any()


class TestSmallViewsInMemory:
    """A view of at most ``MEMORY_ROWS`` rows without sidecars is joined in memory
    (:meth:`~pit.ViewJoin.memory_rows`): the same table DuckDB's join gives, and brute force."""

    @pytest.fixture
    def used(self, monkeypatch) -> list[int]:
        """Whether each call of ``memory_rows`` answered (True) or left the view to DuckDB."""
        calls: list[int] = []
        real = pit.ViewJoin.memory_rows

        def memory_rows(view, entity):
            rows = real(view, entity)
            calls.append(rows is not None)
            return rows

        monkeypatch.setattr(pit.ViewJoin, "memory_rows", memory_rows)
        return calls

    @staticmethod
    def files(rows: pd.DataFrame, directory) -> tuple:
        paths = []
        for i, part in enumerate(np.array_split(np.arange(len(rows)), 2)):
            paths.append(directory / f"part-{i}.parquet")
            rows.iloc[part].to_parquet(paths[-1], index=False)
        return tuple(paths)

    @pytest.mark.parametrize(("seed", "ttl"), [(1, None), (2, timedelta(days=20))])
    def test_in_memory_equals_duckdb_s_join_and_brute_force(self, tmp_path, used, monkeypatch,
                                                           seed, ttl):
        rows = feature_rows(seed)
        entity = entity_rows(rows, seed)
        entity = pd.concat([entity, pd.DataFrame({  # a null time and a null key match nothing
            "customer": ["c001", None], "region": ["r1", "r0"],
            "t": pd.to_datetime([pd.NaT, T0 + pd.Timedelta(days=200)], utc=True)})],
            ignore_index=True)
        files = self.files(rows, tmp_path)

        memory = TestRowSidecars.arrow_join(files, entity, ttl=ttl)
        monkeypatch.setattr(pit, "MEMORY_ROWS", 0)
        duckdb_join = TestRowSidecars.arrow_join(files, entity, ttl=ttl)
        plain = TestRowSidecars.arrow_join(files, entity, prune=False, ttl=ttl)

        assert used == [True, False]
        assert memory.equals(duckdb_join) and memory.equals(plain)
        assert memory.schema == duckdb_join.schema
        assert_same(memory.to_pandas(), brute_force(rows, entity, ttl))
        assert memory.column("row_ts")[-2:].null_count == 2

    def test_keys_of_another_text_type_and_tied_rows(self, tmp_path, used):
        rows = feature_rows(3)
        tied = rows.iloc[:5].assign(count=-1)  # the same customers and times, other values
        files = self.files(pd.concat([rows, tied], ignore_index=True), tmp_path)
        entity = entity_rows(rows, 3)
        entity["customer"] = entity.customer.astype(pd.ArrowDtype(pa.large_string()))

        got = TestRowSidecars.join(files, entity)

        assert used == [True]
        expected = brute_force(rows, entity)
        for column in ("score", "row_ts"):  # tied rows differ only in their count
            for a, b in zip(got[column], expected[column]):
                assert (pd.isna(a) and pd.isna(b)) or a == b, (column, a, b)
        assert got.row_ts.notna().sum() > 100
        counts = dict(zip(zip(rows.cid, rows.ts), rows["count"]))
        for customer, count, at in zip(entity.customer, got["count"], got.row_ts):
            if pd.notna(at):
                assert count == counts[(customer, at)] or (count == -1 and (
                    (tied.cid == customer) & (tied.ts == at)).any())

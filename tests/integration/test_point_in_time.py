"""Historical features through churn_model_v1 equal an independent brute-force computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import copy_feature_repo, populate
from tests.factories import customers_for, random_events
from tests.reference import brute_force_features
from usage_features.config import RepoPaths
from usage_features.features.build import build_features
from usage_features.features.retrieval import historical_features, served_feature_names
from usage_features.features.spec import served_features
from usage_features.features.store import open_store
from usage_features.ingestion import ingest_files
from usage_features.ingestion.ingest import event_repository

DAY = pd.Timedelta(days=1)


def assert_features_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal values; floats to 1e-9 (day-valued features: about 0.1 ms, below the
    float64 resolution of epoch-second arithmetic, which is ~0.2 µs)."""
    for feature in served_features():
        got, want = actual[feature.name].to_numpy(), expected[feature.name].to_numpy()
        if feature.dtype == "float64":
            np.testing.assert_allclose(got.astype(float), want.astype(float), rtol=1e-9,
                                       atol=1e-9, equal_nan=True, err_msg=feature.name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=feature.name)


def entity_rows(events: pd.DataFrame, seed: int, n: int = 300) -> pd.DataFrame:
    """Random (customer, t) rows plus the edge cases around day boundaries."""
    rng = np.random.default_rng(seed)
    start, end = events.timestamp.min(), events.timestamp.max()
    customers = sorted(events.customer_id.unique())
    random_t = start + (end - start + 120 * DAY) * rng.random(n) - 10 * DAY
    rows = [pd.DataFrame({"customer_id": rng.choice(customers, n), "event_timestamp": random_t})]
    for customer in customers[:8]:
        mine = events[events.customer_id == customer].timestamp
        midnight = mine.sample(1, random_state=seed).iloc[0].floor("D") + DAY
        edges = [midnight, midnight - pd.Timedelta(microseconds=1), mine.min() - DAY,
                 mine.min(), mine.max() + 400 * DAY, midnight + pd.Timedelta(hours=18)]
        rows.append(pd.DataFrame({"customer_id": customer, "event_timestamp": edges}))
    rows.append(pd.DataFrame({"customer_id": ["nobody", "cust-silent"],
                              "event_timestamp": [end, end]}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    repo = copy_feature_repo(tmp_path_factory.mktemp("pit") / "feature_repo")
    events = random_events(seed=11)
    customers = customers_for(events)
    populate(repo, events, customers)
    return repo, events, customers


class TestHistoricalRetrieval:
    def test_features_equal_brute_force_for_random_and_boundary_times(self, built):
        repo, events, customers = built
        entity = entity_rows(events, seed=3)

        actual = historical_features(open_store(repo), entity)

        assert list(actual.columns) == ["customer_id", "event_timestamp",
                                        *served_feature_names()]
        assert_features_equal(actual, brute_force_features(events, customers, entity))

    def test_rows_come_back_in_the_callers_order_with_extra_columns(self, built):
        repo, events, _ = built
        entity = entity_rows(events, seed=4, n=50).sample(frac=1, random_state=1)
        entity["label"] = np.arange(len(entity))

        actual = historical_features(open_store(repo), entity)

        pd.testing.assert_index_equal(actual.index, entity.index)
        assert actual["label"].tolist() == entity["label"].tolist()
        assert actual["customer_id"].tolist() == entity["customer_id"].tolist()

    def test_count_events_last_n_days_agrees_with_event_count_at_day_starts(self, built):
        repo, events, _ = built
        entity = entity_rows(events, seed=5, n=40)
        entity["event_timestamp"] = entity["event_timestamp"].dt.floor("D")
        features = historical_features(open_store(repo), entity)
        repository = event_repository(RepoPaths(repo))

        for row in features.itertuples():
            for n in (7, 30, 90):
                assert repository.count_events_last_n_days(
                    row.customer_id, n, as_of=row.event_timestamp.to_pydatetime()
                ) == getattr(row, f"event_count_{n}d")


class TestLeakageAndIncrementalBuilds:
    def test_events_after_t_never_change_the_features_at_t(self, feature_repo_copy):
        events = random_events(seed=21, customers=12)
        cut = events.timestamp.quantile(0.6)
        populate(feature_repo_copy, events[events.timestamp <= cut])
        entity = entity_rows(events[events.timestamp <= cut], seed=6, n=150)
        entity = entity[entity.event_timestamp <= cut]
        before = historical_features(open_store(feature_repo_copy), entity)

        later = feature_repo_copy / "later.parquet"
        events[events.timestamp > cut].to_parquet(later, index=False)
        ingest_files([later], RepoPaths(feature_repo_copy))
        summary = build_features(RepoPaths(feature_repo_copy))

        assert summary.new_event_files > 0
        after = historical_features(open_store(feature_repo_copy), entity)
        pd.testing.assert_frame_equal(after, before)

    def test_incremental_builds_equal_a_full_rebuild(self, tmp_path):
        events = random_events(seed=31, customers=15)
        rng = np.random.default_rng(0)
        batches = rng.integers(0, 3, len(events))  # late-arriving old events included
        incremental = RepoPaths(copy_feature_repo(tmp_path / "incremental"))
        for batch in range(3):
            source = tmp_path / f"batch{batch}.parquet"
            events[batches == batch].to_parquet(source, index=False)
            ingest_files([source], incremental)
            build_features(incremental)
        full = RepoPaths(copy_feature_repo(tmp_path / "full"))
        events.to_parquet(tmp_path / "all.parquet")
        ingest_files([tmp_path / "all.parquet"], full)
        build_features(full)

        def table(paths: RepoPaths) -> pd.DataFrame:
            frame = pd.read_parquet(paths.customer_usage)
            return frame.sort_values(["customer_id", "day"]).reset_index(drop=True)

        pd.testing.assert_frame_equal(table(incremental), table(full))

    def test_a_rebuild_with_no_new_events_changes_no_file(self, feature_repo_copy):
        populate(feature_repo_copy, random_events(seed=41, customers=5))
        features = RepoPaths(feature_repo_copy).features
        before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in features.rglob("*")
                  if p.is_file()}

        summary = build_features(RepoPaths(feature_repo_copy))

        assert not summary.changed
        assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in features.rglob("*")
                if p.is_file()} == before

    def test_tables_hold_a_row_only_on_days_some_value_changes(self, built):
        repo, events, _ = built
        table = pd.read_parquet(RepoPaths(repo).customer_usage).sort_values(
            ["customer_id", "day"])
        values = [f.name for f in served_features() if f.name in table.columns]
        previous = table.groupby("customer_id")[values].shift()
        unchanged = (table[values].eq(previous) | (table[values].isna() & previous.isna()))
        assert not unchanged.all(axis=1).any()
        # after a customer's last event the rows stop once it has left the 90-day window
        last_event_day = events.groupby("customer_id").timestamp.max().dt.floor("D")
        last_row = table.groupby("customer_id").feature_timestamp.max()
        pd.testing.assert_series_equal(last_row, last_event_day + 91 * DAY, check_names=False,
                                      check_dtype=False)

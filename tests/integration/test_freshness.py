"""Freshness of the data behind an answer, and materialize refusing to run past the data."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import copy_feature_repo, populate
from tests.factories import churn_dataset
from usage_features.config import RepoPaths
from usage_features.features.build import build_features
from usage_features.ingestion import ingest_files
from usage_features.service_layer.materialize import MaterializeError, materialize
from usage_features.serving.freshness import LAG_VARIABLE, freshness


@pytest.fixture(scope="module")
def stale(tmp_path_factory):
    """A repo whose latest event is five days old, materialized half a day after it."""
    repo = copy_feature_repo(tmp_path_factory.mktemp("stale") / "feature_repo")
    events, customers = churn_dataset(seed=9, customers=20, days=90)
    now = datetime.now(UTC)
    events = events[events.timestamp < now - timedelta(days=5)]
    populate(repo, events, customers)
    summary = materialize(repo, end=events.timestamp.max() + timedelta(hours=12))
    return repo, events, summary, now


class TestMaterializeStaysWithinTheData:
    def test_an_end_within_a_day_of_the_latest_event_is_loaded_without_a_warning(self, stale):
        _, events, summary, _ = stale
        assert summary.end == events.timestamp.max() + timedelta(hours=12)
        assert summary.warning is None

    def test_an_end_beyond_now_is_clamped_to_now_and_the_old_data_is_warned_of(
            self, stale, tmp_path):
        repo, events, _, now = stale
        copy = shutil.copytree(repo, tmp_path / "repo")
        later = materialize(copy, end=now + timedelta(days=30), now=now)
        assert later.end == now
        assert "later than the data allows (now)" in later.warning
        days = (now.date() - events.timestamp.max().date()).days - 1
        assert f"{days} day(s) past the day after the latest ingested event" in later.warning

    def test_an_end_before_the_online_stores_is_refused(self, stale):
        repo, _, summary, _ = stale
        with pytest.raises(MaterializeError, match="before the online store's current end"):
            materialize(repo, end=summary.end - timedelta(days=3))


class TestFreshness:
    def test_an_old_latest_event_and_a_stale_online_day_are_warned_of(self, stale):
        repo, events, summary, now = stale
        record = freshness(repo, now)
        assert record.latest_event_at == events.timestamp.max()
        assert record.materialized_through == summary.end
        warnings = " ".join(record.warnings())
        assert "more than the allowed 36 h" in warnings
        assert (f"holds the features of {summary.end.date()}, not of {now.date()}"
                in warnings)

    def test_the_allowed_lag_is_configurable(self, stale, monkeypatch):
        repo, _, _, now = stale
        assert not any("allowed" in w for w in
                       freshness(repo, now, max_lag=timedelta(days=30)).warnings())
        monkeypatch.setenv(LAG_VARIABLE, "1000")
        assert not any("allowed" in w for w in freshness(repo, now).warnings())

    def test_an_answer_on_the_materialized_day_within_the_lag_is_fresh(self, stale):
        repo, _events, summary, _ = stale
        as_of = summary.end  # its day, 12 h after the latest event
        record = freshness(repo, as_of.to_pydatetime())
        assert record.warnings() == []
        assert record.last_build_at is not None and record.last_materialize_at is not None

    def test_unbuilt_and_unmaterialized_changes_are_warned_of(self, stale, tmp_path):
        repo, events, _, now = stale
        copy = shutil.copytree(repo, tmp_path / "repo")
        late = events.tail(5).assign(event_id=[f"00000000-0000-4000-8000-00000000000{i}"
                                               for i in range(5)])
        late.to_parquet(tmp_path / "late.parquet", index=False)
        ingest_files([tmp_path / "late.parquet"], RepoPaths(copy))
        assert any("ingested event file(s) are not in the feature tables" in w
                   for w in freshness(copy, now).warnings())
        build_features(RepoPaths(copy))
        warnings = freshness(copy, now).warnings()
        assert not any("not in the feature tables" in w for w in warnings)
        assert any("a build changed features from" in w for w in warnings)

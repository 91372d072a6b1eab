"""The offline store in a Feast repo of its own (tests/example_repo), driven as a user would:
``feast apply`` on the command line, then ``get_historical_features``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.reference_pit import RefView, point_in_time_join

EXAMPLE = Path(__file__).resolve().parents[1] / "example_repo"
T = pd.Timestamp("2026-06-01 08:00", tz="UTC")
MIN = timedelta(minutes=1)


def status_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    first = pd.DataFrame({
        "station_id": [1, 1, 2, 1],
        "observed_at": [T, T + 20 * MIN, T + 5 * MIN, T + 60 * MIN],
        "loaded_at": [T + MIN, T + 21 * MIN, T + 6 * MIN, T + 61 * MIN],
        "bikes": [4, 7, 1, 9],
        "docks_available": [6, 3, 9, 1],
    })
    correction = pd.DataFrame({  # station 1 at T+20: re-sent later with other values
        "station_id": [1], "observed_at": [T + 20 * MIN], "loaded_at": [T + 40 * MIN],
        "bikes": [8], "docks_available": [2],
    })
    return first, correction


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("example") / "bike_rentals"
    shutil.copytree(EXAMPLE, repo)
    (repo / "data" / "station_status").mkdir(parents=True)
    first, correction = status_rows()
    first.to_parquet(repo / "data" / "station_status" / "load-1.parquet")
    correction.to_parquet(repo / "data" / "station_status" / "load-2.parquet")
    pd.DataFrame({"observed_at": [T - 30 * MIN, T + 50 * MIN],
                  "temperature_c": [14.5, 16.0]}).to_parquet(repo / "data" / "weather.parquet")
    feast = Path(sys.executable).with_name("feast")
    done = subprocess.run([str(feast), "apply"], cwd=repo, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return repo


def test_historical_features_in_the_example_repo_match_the_brute_force_join(repo):
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    entity = pd.DataFrame({
        "station_id": [1, 2, 1, 1, 3, 1, 2],
        "event_timestamp": [T + 25 * MIN, T + 10 * MIN, T - MIN, T + 55 * MIN, T + 25 * MIN,
                            T + 20 * MIN, T + 36 * MIN],
    })
    out = store.get_historical_features(
        entity_df=entity, features=store.get_feature_service("rental_model_v1")).to_df()
    first, correction = status_rows()
    views = [
        RefView("station_status", pd.concat([first, correction]), {"station_id": "station_id"},
                ["bikes_available", "docks_available"], "observed_at", "loaded_at",
                ttl=timedelta(minutes=30), field_mapping={"bikes": "bikes_available"}),
        RefView("city_weather", pd.read_parquet(repo / "data" / "weather.parquet"), {},
                ["temperature_c"], "observed_at", ttl=timedelta(hours=2)),
    ]
    expected = point_in_time_join(entity, views)
    assert list(out.columns) == list(expected.columns)
    for column in expected.columns:
        assert values(out[column]) == values(expected[column]), column
    # worked by hand: the corrected snapshot wins; T+55 is 35 min after T+20 (past the TTL)
    assert values(out.bikes_available)[:4] == [8, 1, None, None]


def values(series: pd.Series) -> list:
    return series.astype(object).where(series.notna(), None).tolist()

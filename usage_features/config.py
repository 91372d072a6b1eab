"""Where a feature repo keeps its data, and the names its definitions and the code share (the
feature service, the feature tables): one place, with local defaults.

Every command takes ``--repo DIR`` (default ``feature_repo``); everything it writes lives under
``DIR/data/``, so a copy of a feature repo is a second, independent project.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REPO = Path("feature_repo")
#: The churn model's Feast feature service: training and scoring read it, the model is saved
#: under its name (a new version of the model's inputs is a new service).
SERVICE_NAME = "churn_model_v1"
#: The feature tables the build writes, relative to the feature repo (the Feast sources' paths).
FEATURE_TABLES = "data/features"
CUSTOMER_USAGE_TABLE = f"{FEATURE_TABLES}/customer_usage"
CUSTOMER_PROFILE_TABLE = f"{FEATURE_TABLES}/customer_profile.parquet"
#: How far ahead of "now" an event timestamp may be before it is rejected (clock skew); a
#: repo overrides it with `limits: max_future_hours` in its usage_features.yaml.
MAX_FUTURE_SKEW_HOURS = 24


#: Risk bands: the lowest churn probability of each band ("medium=0.2,high=0.5" in the
#: environment variable USAGE_FEATURES_RISK_BANDS overrides it).
DEFAULT_RISK_BANDS = {"low": 0.0, "medium": 0.2, "high": 0.5}


def risk_bands() -> dict[str, float]:
    """Band name -> lowest probability in the band, ascending."""
    bands = dict(DEFAULT_RISK_BANDS)
    for item in filter(None, os.environ.get("USAGE_FEATURES_RISK_BANDS", "").split(",")):
        name, _, threshold = item.partition("=")
        bands[name.strip()] = float(threshold)
    return dict(sorted(bands.items(), key=lambda kv: kv[1]))


def default_repo() -> Path:
    """The feature repo: ``$USAGE_FEATURES_REPO`` or ``feature_repo``."""
    return Path(os.environ.get("USAGE_FEATURES_REPO", DEFAULT_REPO))


@dataclass(frozen=True)
class RepoPaths:
    """The layout of one feature repo's data directory."""

    repo: Path

    def __post_init__(self) -> None:
        # absolute: Feast changes the working directory while it applies a repo
        object.__setattr__(self, "repo", Path(self.repo).resolve())

    @property
    def data(self) -> Path:
        return self.repo / "data"

    @property
    def events(self) -> Path:
        """The event log: Parquet, hive-partitioned by ``event_date``."""
        return self.data / "events"

    @property
    def quarantine(self) -> Path:
        """Rejected input rows, one Parquet file per input file."""
        return self.data / "quarantine"

    @property
    def lock(self) -> Path:
        """Writers' lock: held exclusively by ingest, build and materialize."""
        return self.data / ".lock"

    @property
    def commit_lock(self) -> Path:
        """The event log's commit lock: exclusive while files are renamed in, shared by readers."""
        return self.data / ".commit.lock"

    @property
    def customers(self) -> Path:
        """The customers table as loaded (signup, churn, plan)."""
        return self.data / "customers.parquet"

    @property
    def features(self) -> Path:
        return self.repo / FEATURE_TABLES

    @property
    def customer_usage(self) -> Path:
        """The windowed feature table: one Parquet file per month of feature rows."""
        return self.repo / CUSTOMER_USAGE_TABLE

    @property
    def customer_profile(self) -> Path:
        """Signup time and plan, stamped with the signup time (second Feast source)."""
        return self.repo / CUSTOMER_PROFILE_TABLE

    @property
    def daily(self) -> Path:
        """Internal: per (customer, day) aggregates the incremental build starts from, one
        Parquet file per month of days (``YYYY-MM.parquet``): a day's build rewrites its
        month's, not the whole history's.

        (Not ``_``-prefixed: Spark and Hadoop readers skip such files as hidden.)"""
        return self.features / "daily_aggregates"

    @property
    def daily_files(self) -> list[Path]:
        """The daily table's month files, in order."""
        return sorted(self.daily.glob("*.parquet"))

    @property
    def single_file_daily(self) -> Path:
        """Where versions before the month files kept the daily table, as one file (the next
        build splits it: :func:`usage_features.features.build.build_features`)."""
        return self.features / "daily_aggregates.parquet"

    @property
    def model(self) -> Path:
        """The default trained model (skops), with its metadata beside it as ``.json``."""
        return self.data / "models" / f"{SERVICE_NAME}.skops"

    @property
    def scores(self) -> Path:
        """Daily score snapshots, ``date=YYYY-MM-DD/scores.parquet``."""
        return self.data / "scores"

    @property
    def reports(self) -> Path:
        return self.data / "reports"

    @property
    def build_state(self) -> Path:
        """What the build folded in, and the checksums of every file it wrote."""
        return self.features / "_build_state.json"

    @property
    def tables_lock(self) -> Path:
        """The feature tables' lock: exclusive while a build moves its files in, shared by
        readers while they check and read them."""
        return self.features / ".tables.lock"

"""A small trained repo with two daily snapshots and a monitor report: what the web pages
show, for their tests (``tests/e2e/test_web_pages.py``).

Three customers have ids that break careless pages: markup that runs a script when inserted
as HTML, an id with a slash, a percent sign, spaces and an ampersand (a URL built without
encoding it whole goes to another page), and one a spreadsheet would run as a formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from tests.conftest import copy_feature_repo, populate
from tests.factories import churn_dataset
from usage_features.adapters.score_snapshots import ParquetSnapshots
from usage_features.config import RepoPaths

XSS = "<img src=x onerror=alert(1)>"
ODD = "a/b %2F c&d"
FORMULA = "=HYPERLINK(\"http://x\")"
TOKEN = "web-test-token-0123456789"
PLANS = ("free", "pro", "enterprise")


@dataclass
class WebWorld:
    repo: Path
    customers: pd.DataFrame
    events: pd.DataFrame
    days: list  # the snapshot days, oldest first

    @property
    def paths(self) -> RepoPaths:
        return RepoPaths(self.repo)


def make_web_world(work: Path, customers: int = 40) -> WebWorld:
    # deferred: the service layer loads scikit-learn and Feast; collecting tests must not wait
    from usage_features.service_layer.bootstrap import bootstrap
    from usage_features.service_layer.materialize import materialize
    from usage_features.service_layer.monitor import monitor
    from usage_features.service_layer.score import score_active
    from usage_features.service_layer.train import TrainConfig, train

    events, table = churn_dataset(seed=8, customers=customers)
    active = table.customer_id[table.churned_at.isna() & (table.customer_id != "cust-silent")]
    renamed = dict(zip(active.iloc[:3], (XSS, ODD, FORMULA)))
    events["customer_id"] = events.customer_id.replace(renamed)
    table["customer_id"] = table.customer_id.replace(renamed)
    table["plan"] = [PLANS[i % len(PLANS)] for i in range(len(table))]
    repo = copy_feature_repo(work / "feature_repo")
    populate(repo, events, table)
    train(TrainConfig(repo=repo, importance_repeats=1))
    now = datetime.now(UTC)
    materialize(repo, end=now)
    context = bootstrap(repo)
    paths = context.paths
    today = now.date()
    yesterday = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    sink = ParquetSnapshots(paths.scores)
    sink.write(score_active(context.scorer, paths.customers, yesterday).scores,
               yesterday.date())
    sink.write(score_active(context.scorer, paths.customers).scores, today)
    monitor(bootstrap(repo))
    return WebWorld(repo, pd.read_parquet(paths.customers), events,
                    [yesterday.date(), today])

"""The compiled DuckDB feature queries, run directly (no build, no Feast), equal the brute-force
oracle on every row they produce."""

import pandas as pd

from tests.factories import random_events
from tests.reference import brute_force_features
from tests.unit.test_feature_spec import compiled_feature_rows
from usage_features.features.spec import WINDOWED


def test_every_row_equals_the_brute_force_oracle_at_its_timestamp():
    events = random_events(seed=5, customers=4, days=120)
    rows = compiled_feature_rows(events)
    entity = pd.DataFrame({"customer_id": rows.customer_id,
                           "event_timestamp": rows.feature_timestamp})
    expected = brute_force_features(events, None, entity)
    stored = [f.name for f in WINDOWED if f.stored]
    for name in ("last_event_at", "last_monitoring_run_at"):  # stored to the second
        expected[name] = expected[name].dt.floor("s").astype("datetime64[us, UTC]")
        rows[name] = rows[name].astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(rows[stored], expected[stored], check_dtype=False,
                                  check_exact=False, rtol=1e-12)

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from tests.factories import T0, make_event
from usage_features.domain import (
    EARLY_LIFE_DAYS,
    LOW_ADOPTION_THRESHOLD,
    EventType,
    FeatureAdoptionScore,
    early_life_churn_signal,
    is_early_life,
    is_early_life_churn_signal,
)


class TestEventType:
    def test_covers_the_monitoring_products_actions(self):
        assert {t.value for t in EventType} >= {
            "login", "dashboard_view", "monitoring_run", "alert_configured",
            "report_export", "integration_connect", "user_invited", "api_call",
        }

    def test_is_a_string(self):
        assert EventType.MONITORING_RUN == "monitoring_run"


class TestFeatureAdoptionScore:
    @pytest.mark.parametrize("value", [0, 0.0, 0.2, 1, 1.0])
    def test_accepts_the_closed_unit_interval(self, value):
        assert FeatureAdoptionScore(value).value == float(value)

    @pytest.mark.parametrize("value", [-0.001, 1.0001, math.inf, -math.inf])
    def test_rejects_values_outside_the_unit_interval(self, value):
        with pytest.raises(ValueError, match=r"within \[0, 1\]"):
            FeatureAdoptionScore(value)

    def test_rejects_nan(self):
        with pytest.raises(ValueError, match="NaN"):
            FeatureAdoptionScore(math.nan)

    @pytest.mark.parametrize("value", ["0.5", None, True, [0.5]])
    def test_rejects_non_numbers(self, value):
        with pytest.raises(ValueError, match="must be a number"):
            FeatureAdoptionScore(value)

    def test_is_low_strictly_below_the_threshold(self):
        assert FeatureAdoptionScore(LOW_ADOPTION_THRESHOLD - 1e-9).is_low
        assert not FeatureAdoptionScore(LOW_ADOPTION_THRESHOLD).is_low

    def test_is_immutable(self):
        with pytest.raises(AttributeError):
            FeatureAdoptionScore(0.5).value = 0.1


class TestEarlyLifeChurnSignal:
    def test_needs_low_adoption_declining_frequency_and_early_life(self):
        low, high = FeatureAdoptionScore(0.1), FeatureAdoptionScore(0.5)
        assert is_early_life_churn_signal(low, tenure_days=10, frequency_declining=True)
        assert not is_early_life_churn_signal(high, tenure_days=10, frequency_declining=True)
        assert not is_early_life_churn_signal(low, tenure_days=10, frequency_declining=False)
        assert not is_early_life_churn_signal(
            low, tenure_days=EARLY_LIFE_DAYS, frequency_declining=True
        )
        assert not is_early_life_churn_signal(low, tenure_days=-1, frequency_declining=True)

    def test_the_thresholds_are_strict_below_and_inclusive_at_zero_tenure(self):
        at_threshold = FeatureAdoptionScore(LOW_ADOPTION_THRESHOLD)
        assert not is_early_life_churn_signal(at_threshold, 10, frequency_declining=True)
        assert is_early_life_churn_signal(FeatureAdoptionScore(0.0), 0, frequency_declining=True)
        assert is_early_life(0) and is_early_life(EARLY_LIFE_DAYS - 1e-9)
        assert not is_early_life(EARLY_LIFE_DAYS) and not is_early_life(math.nan)

    def test_the_element_wise_form_over_arrays_agrees_with_the_predicate_case_by_case(self):
        scores = [0.0, LOW_ADOPTION_THRESHOLD - 1e-9, LOW_ADOPTION_THRESHOLD, 0.7, math.nan]
        tenures = [-1.0, 0.0, 30.0, EARLY_LIFE_DAYS - 1e-9, EARLY_LIFE_DAYS, 400.0, math.nan]
        cases = list(itertools.product(scores, tenures, [False, True]))
        score, tenure, declining = (np.array(column) for column in zip(*cases))
        vectorised = early_life_churn_signal(score, tenure, declining)
        assert vectorised.dtype == bool and vectorised.shape == (len(cases),)
        expected = [not math.isnan(s) and is_early_life_churn_signal(FeatureAdoptionScore(s), t, d)
                    for s, t, d in cases]
        assert vectorised.tolist() == expected
        assert 0 < sum(expected) < len(cases)


class TestUsageEvent:
    def test_coerces_names_and_floats_into_canonical_values(self):
        event = make_event(event_type=" Monitoring_Run ", feature_adoption_score=0.3)
        assert event.event_type == EventType.MONITORING_RUN
        assert event.feature_adoption_score == FeatureAdoptionScore(0.3)

    def test_an_event_of_a_product_without_adoption_scores_has_none(self):
        event = make_event(event_type="create_opportunity", feature_adoption_score=None)
        assert event.feature_adoption_score is None

    def test_converts_the_timestamp_to_utc(self):
        plus_two = timezone(timedelta(hours=2))
        event = make_event(timestamp=datetime(2026, 3, 1, 12, tzinfo=plus_two))
        assert event.timestamp == datetime(2026, 3, 1, 10, tzinfo=UTC)
        assert event.timestamp.utcoffset() == timedelta(0)

    def test_rejects_a_naive_timestamp(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            make_event(timestamp=datetime(2026, 3, 1))

    @pytest.mark.parametrize("event_id", ["", "   ", None, 42, "x" * 257])
    def test_rejects_an_event_id_that_is_not_non_empty_text_up_to_256_characters(self, event_id):
        with pytest.raises(ValueError, match="event_id"):
            make_event(event_id=event_id)

    @pytest.mark.parametrize("event_id", ["1234", "evt_0001", "x" * 256])
    def test_any_other_text_is_an_event_id_kept_as_written(self, event_id):
        assert make_event(event_id=f" {event_id} ").event_id == event_id

    def test_stores_the_event_id_in_lower_case(self):
        event = make_event(event_id="6F1C2A7E-8B1D-4C1E-9F3A-1B2C3D4E5F60")
        assert event.event_id == "6f1c2a7e-8b1d-4c1e-9f3a-1b2c3d4e5f60"

    @pytest.mark.parametrize("customer_id", ["", "   ", None])
    def test_rejects_an_empty_customer_id(self, customer_id):
        with pytest.raises(ValueError, match="customer_id"):
            make_event(customer_id=customer_id)

    @pytest.mark.parametrize("event_type", ["", "   ", None])
    def test_rejects_an_empty_event_type(self, event_type):
        # which names a repo accepts is its vocabulary's business, checked at ingest
        with pytest.raises(ValueError, match="event_type"):
            make_event(event_type=event_type)

    def test_rejects_an_invalid_score(self):
        with pytest.raises(ValueError, match="adoption score"):
            make_event(feature_adoption_score=1.5)

    def test_identity_is_the_event_id(self):
        event = make_event(timestamp=T0)
        same_id = make_event(event_id=event.event_id, timestamp=T0 + timedelta(days=1))
        assert event == same_id and hash(event) == hash(same_id)
        assert not event.same_content_as(same_id)
        assert event != make_event(timestamp=T0)

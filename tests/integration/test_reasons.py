"""A score's reasons are the model's own: the groups whose values raise the probability most.

Held against an independent computation: each group's features set to the reference values in
a DataFrame, scored through the fitted scikit-learn pipeline (not the scorer's batched matrix).
"""

import math

import numpy as np
import pandas as pd
import pytest

from tests.reasons_data import FEATURES, customers
from usage_features.domain import EARLY_LIFE_DAYS, LOW_ADOPTION_THRESHOLD
from usage_features.features.spec import Group, feature_groups, served_features
from usage_features.serving.reasons import (
    LIMIT,
    MIN_RAISE,
    TEMPLATES,
    GroupReasons,
    ReasonsUnavailableWarning,
    render,
)
from usage_features.training.estimators import churn_classifier
from usage_features.training.metadata import ModelMetadata
from usage_features.training.model import TrainedModel
from usage_features.training.reference_values import reference_values


@pytest.fixture(scope="module")
def fitted():
    """A churn model fitted on constructed customers, with their reference values."""
    frame, churned = customers(3000)
    model = TrainedModel(churn_classifier(FEATURES).fit(frame, churned),
                         ModelMetadata("churn_model_v1", FEATURES, 30, 7, {}))
    return model, reference_values(frame, FEATURES)


@pytest.fixture(scope="module")
def scored(fitted):
    """300 other customers: their probabilities and reasons, and each group's drop in
    probability when neutralised, computed independently through the pipeline."""
    model, reference = fitted
    frame, _ = customers(300, seed=1)
    explainer = GroupReasons(FEATURES, reference)
    matrix = frame[FEATURES].to_numpy(dtype=float)
    probabilities, raises = explainer.score(model.predict_matrix, matrix)
    reasons = [explainer.reasons(row, raise_) for row, raise_ in zip(matrix, raises)]
    own = model.pipeline.predict_proba(frame)[:, 1]
    drops = {}
    for group, names in feature_groups().items():
        neutral = frame.copy()
        for name in names:
            neutral[name] = reference[name]
        drops[group] = own - model.pipeline.predict_proba(neutral)[:, 1]
    return probabilities, reasons, own, pd.DataFrame(drops)


class TestReasonsFromTheModel:
    def test_the_probability_is_the_models_own(self, scored):
        probabilities, _, own, _ = scored
        np.testing.assert_array_equal(probabilities, own)

    def test_neutralising_the_first_reasons_group_lowers_the_probability_most(self, scored):
        _, reasons, _, drops = scored
        explained = [i for i, found in enumerate(reasons) if found]
        assert len(explained) > 100
        for i in explained:
            first = reasons[i][0].group
            assert drops.loc[i, first] == drops.loc[i].max(), (i, reasons[i], drops.loc[i])

    def test_reasons_are_the_groups_that_raise_the_probability_largest_first(self, scored):
        _, reasons, _, drops = scored
        for i, found in enumerate(reasons):
            expected = drops.loc[i][drops.loc[i] >= MIN_RAISE].sort_values(
                ascending=False, kind="stable")  # ties: in group order
            assert [r.group for r in found] == list(expected.index[:LIMIT]), i
            assert [r.raises_by for r in found] == pytest.approx(list(expected[:LIMIT]))

    def test_a_group_that_lowers_the_risk_is_never_a_reason(self, scored):
        _, reasons, _, drops = scored
        lowering = drops < 0
        assert lowering.to_numpy().sum() > 100  # the case occurs
        for i, found in enumerate(reasons):
            assert not any(lowering.loc[i, r.group] for r in found), i

    def test_a_few_customers_score_the_same_as_many(self, fitted, scored):
        model, reference = fitted
        probabilities, reasons, _, _ = scored
        frame, _ = customers(300, seed=1)
        explainer = GroupReasons(FEATURES, reference)
        matrix = frame[FEATURES].to_numpy(dtype=float)[:3]  # 21 rows: the compiled trees
        few, raises = explainer.score(model.predict_matrix, matrix)
        np.testing.assert_array_equal(few, probabilities[:3])
        assert [explainer.reasons(r, x) for r, x in zip(matrix, raises)] == reasons[:3]

    def test_a_customer_at_the_reference_values_has_no_reasons(self, fitted):
        model, reference = fitted
        explainer = GroupReasons(FEATURES, reference)
        matrix = np.array([[reference[f] for f in FEATURES]])
        _, raises = explainer.score(model.predict_matrix, matrix)
        assert raises.tolist() == [[0.0] * len(feature_groups())]
        assert explainer.reasons(matrix[0], raises[0]) == []

    def test_a_long_silence_is_given_with_the_customers_own_number_of_days(self, fitted):
        model, reference = fitted
        explainer = GroupReasons(FEATURES, reference)
        row = {**reference, "days_since_last_event": 47.3}
        matrix = np.array([[row[f] for f in FEATURES]])
        _, raises = explainer.score(model.predict_matrix, matrix)
        (first, *_) = explainer.reasons(matrix[0], raises[0])
        assert first.group is Group.RECENCY
        assert first.text == "last active 47 days ago"

    def test_every_reason_states_the_customers_own_values(self, scored):
        _, reasons, _, _ = scored
        frame, _ = customers(300, seed=1)
        for i, found in enumerate(reasons):
            for reason in found:
                assert reason.text == render(reason.group, frame.loc[i].to_dict())

    def test_without_reference_values_the_scores_come_without_reasons(self, fitted, scored):
        model, _ = fitted
        frame, _ = customers(300, seed=1)
        explainer = GroupReasons(FEATURES, None)
        matrix = frame[FEATURES].to_numpy(dtype=float)
        probabilities, raises = explainer.score(model.predict_matrix, matrix)
        np.testing.assert_array_equal(probabilities, scored[0])
        assert raises is None and explainer.reasons(matrix[0], raises) == []
        with pytest.warns(ReasonsUnavailableWarning, match="retrain"):
            explainer.warn_if_unavailable("churn_model_v1-abc")

    def test_reference_values_lacking_a_feature_are_refused(self, fitted):
        _, reference = fitted
        partial = {k: v for k, v in reference.items() if k != "tenure_days"}
        with pytest.raises(ValueError, match="tenure_days"):
            GroupReasons(FEATURES, partial)


class TestWording:
    def test_a_reason_reads_the_customers_own_numbers(self):
        assert render(Group.DECAY, {"event_count_30d": 4.0, "event_count_prev30d": 31.0,
                                    "event_count_7d": 0.0}) == (
            "4 events in the last 30 days against 31 in the 30 before (0 in the last 7)")
        assert render(Group.INTEGRATION_MONITORING, {
            "monitoring_run_count_30d": 0.0, "days_since_last_monitoring_run": 41.4,
            "integration_connect_count_90d": 2.0}) == (
            "monitoring runs in the last 30 days: 0 (the latest 41 days ago); "
            "integrations connected in 90 days: 2")

    def test_an_unknown_value_picks_the_wording_without_it(self):
        assert render(Group.RECENCY, {"days_since_last_event": math.nan}) == (
            "no activity recorded")
        assert render(Group.INTEGRATION_MONITORING, {
            "monitoring_run_count_30d": 0.0, "days_since_last_monitoring_run": math.nan,
            "integration_connect_count_90d": 0.0}).startswith("never ran a monitoring_run")
        assert render(Group.ADOPTION, {"adoption_score_latest": 0.41,
                                       "adoption_score_change_30d": math.nan}) == (
            "adoption score 0.41")

    def test_the_early_life_signal_is_worded_with_the_domains_thresholds(self):
        text = render(Group.ADOPTION, {"adoption_score_latest": 0.12, "tenure_days": 34.2,
                                       "low_adoption_early_life": 1.0,
                                       "adoption_score_change_30d": -0.1})
        assert text == (f"adoption score 0.12, below {LOW_ADOPTION_THRESHOLD}, with usage slowing"
                        f" in the first {EARLY_LIFE_DAYS} days (34 since signup)")

    def test_every_group_has_a_wording_when_nothing_but_the_counts_is_known(self):
        defaults = {f.name: f.default if f.default is not None else math.nan
                    for f in served_features()}
        for group in feature_groups():
            assert render(group, defaults) != f"{group.value} features", group

    def test_wordings_name_only_served_features(self):
        served = {f.name: f for f in served_features()}
        for templates in TEMPLATES.values():
            for template in templates:
                assert set(template.fields) <= set(served), template
                assert template.when is None or served[template.when].dtype == "bool"

"""Churn risk at several horizons: survival rows censored (never dropped, never a churn after
the data's end), each horizon's labels, the Cox curves, and the horizons' order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.factories import FEATURES, horizon_model, training_frame
from usage_features.domain.scores import Score, score_columns
from usage_features.ingestion.settings import SettingsError, load_settings
from usage_features.training.estimators import churn_classifier
from usage_features.training.horizons import concordance_rows, median_agreeing, monotone
from usage_features.training.labels import (
    LabelError,
    censor_at,
    horizon_labels,
    observation_rows,
    survival_rows,
)
from usage_features.training.metadata import ModelMetadata, horizons_version_sha256
from usage_features.training.model import TrainedModel
from usage_features.training.survival import fit_cox
from usage_features.training.train import check_horizons

START = datetime(2025, 1, 1, tzinfo=UTC)
CUTOFF = START + timedelta(days=100)


def at(days: float) -> datetime:
    return START + timedelta(days=days)


def customers(rows: list[tuple[str, float, float | None]]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [r[0] for r in rows],
                         "signup_at": [at(r[1]) for r in rows],
                         "churned_at": [at(r[2]) if r[2] is not None else None for r in rows]})


#: active at the data's end; churned on day 20; churned after the data's end; signed up late
TABLE = customers([("stays", 0, None), ("leaves", 0, 20), ("after_end", 0, 130),
                   ("late", 50, None)])


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    out = survival_rows(TABLE, START, CUTOFF, interval_days=7)
    out["follow_up"] = (pd.Timestamp(CUTOFF) - out.event_timestamp) / pd.Timedelta(days=1)
    return out


class TestSurvivalRows:
    def test_a_customer_active_at_the_data_s_end_is_censored_at_every_observation(self, rows):
        stays = rows[rows.customer_id == "stays"]
        assert not stays.churned.any()
        np.testing.assert_allclose(stays.duration_days, stays.follow_up)

    def test_a_churn_after_the_data_s_end_is_censored_there_not_an_event(self, rows):
        late = rows[rows.customer_id == "after_end"]
        assert not late.churned.any()
        np.testing.assert_allclose(late.duration_days, late.follow_up)

    def test_a_churner_is_an_event_from_each_observation_before_its_churn(self, rows):
        leaves = rows[rows.customer_id == "leaves"]
        assert leaves.event_timestamp.tolist() == [pd.Timestamp(at(d)) for d in (0, 7, 14)]
        assert leaves.churned.all()
        np.testing.assert_allclose(leaves.duration_days, [20, 13, 6])

    def test_rows_whose_horizon_runs_past_the_end_are_kept_not_dropped(self, rows):
        stays = rows[rows.customer_id == "stays"]
        # every weekly time before the cutoff (day 98 included), where observation_rows
        # stops at cutoff - horizon
        assert stays.event_timestamp.max() == pd.Timestamp(at(98))
        labelled = observation_rows(TABLE, START, CUTOFF, 30, 7)
        assert labelled.event_timestamp.max() == pd.Timestamp(at(70))
        assert len(stays) == 15 > (labelled.customer_id == "stays").sum()

    def test_no_row_before_signup(self, rows):
        assert rows[rows.customer_id == "late"].event_timestamp.min() == pd.Timestamp(at(56))

    def test_nothing_before_the_cutoff_is_a_clear_error(self):
        with pytest.raises(LabelError, match="no observation time"):
            survival_rows(TABLE, CUTOFF, CUTOFF)


class TestHorizonLabels:
    @pytest.mark.parametrize("horizon", [30, 60, 90])
    def test_a_customer_active_at_the_data_s_end_is_never_a_churner_at_any_horizon(
            self, rows, horizon):
        for customer in ("stays", "after_end", "late"):
            mine = rows[rows.customer_id == customer]
            label = horizon_labels(mine.duration_days, mine.churned, mine.follow_up, horizon)
            assert not (label == 1).any()
            # censored (unknown) exactly where the data does not cover the window
            np.testing.assert_array_equal(np.isnan(label), mine.follow_up < horizon)

    def test_a_churner_counts_at_every_horizon_its_churn_falls_within(self, rows):
        leaves = rows[rows.customer_id == "leaves"]
        for horizon, expected in ((10, [0, 0, 1]), (15, [0, 1, 1]), (60, [1, 1, 1])):
            label = horizon_labels(leaves.duration_days, leaves.churned, leaves.follow_up,
                                   horizon)
            assert label.tolist() == expected

    @pytest.mark.parametrize("horizon", [7, 30, 45])
    def test_where_known_they_are_the_classifier_s_labels(self, horizon):
        """Against observation_rows, on random customers: the same rows known, same labels."""
        rng = np.random.default_rng(horizon)
        n = 300
        signup = rng.uniform(0, 90, n)
        churn = np.where(rng.random(n) < 0.6, signup + rng.exponential(40, n), np.nan)
        table = customers([(f"c{i}", s, None if np.isnan(c) else c)
                           for i, (s, c) in enumerate(zip(signup, churn))])
        surv = survival_rows(table, START, CUTOFF, 7)
        follow = (pd.Timestamp(CUTOFF) - surv.event_timestamp) / pd.Timedelta(days=1)
        label = horizon_labels(surv.duration_days, surv.churned, follow, horizon)
        known = surv[~np.isnan(label)].assign(label=label[~np.isnan(label)].astype(np.int8))
        expected = observation_rows(table, START, CUTOFF, horizon, 7)
        pd.testing.assert_frame_equal(
            known[["customer_id", "event_timestamp", "label"]].reset_index(drop=True),
            expected.reset_index(drop=True))

    def test_censoring_at_an_earlier_end_hides_later_churns(self):
        duration, event = censor_at([5.0, 20.0, 20.0], [True, True, False], [10.0, 10.0, 30.0])
        assert duration.tolist() == [5.0, 10.0, 20.0] and event.tolist() == [True, False, False]


@pytest.fixture(scope="module")
def cox():
    """Rows, their made-up times to churn (followed for at most 120 days), and the fit."""
    frame, churned = training_frame(800)
    rng = np.random.default_rng(1)
    days = rng.exponential(np.where(churned == 1, 30.0, 300.0))
    event = (rng.random(len(days)) < 0.8) & (days <= 120)
    days = np.minimum(days, 120.0)
    matrix = frame.to_numpy(dtype=float)
    return matrix, days, event, fit_cox(matrix, days, event)


class TestCoxCurves:
    def test_the_probabilities_are_scikit_survival_s_curves(self, cox):
        # deferred: only this check needs scikit-survival's own prediction
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.util import Surv

        matrix, days, event, fitted = cox
        filled = np.where(np.isfinite(matrix), matrix, fitted.fill)
        design = (np.concatenate([
            np.sign(filled) * np.log1p(np.abs(filled)),
            (~np.isfinite(matrix))[:, fitted.indicators].astype(float)], axis=1)
            - fitted.mean) / fitted.scale
        reference = CoxPHSurvivalAnalysis(alpha=1.0).fit(design, Surv.from_arrays(event, days))
        expected = [[1 - f(h) for h in (30.0, 90.0)]
                    for f in reference.predict_survival_function(design[:20])]
        np.testing.assert_allclose(fitted.churn_probability(matrix[:20], [30, 90]), expected,
                                   rtol=1e-9)

    def test_the_median_is_where_the_curve_first_reaches_one_half(self, cox):
        matrix, *_, fitted = cox
        median = fitted.median_days(matrix)
        found = ~np.isnan(median)
        assert found.any() and (~found).any()  # some curves stay above one half
        for row, days in zip(matrix[found][:50], median[found][:50]):
            before = fitted.times[fitted.times < days]
            assert fitted.churn_probability(row[None, :], [days])[0, 0] >= 0.5
            if len(before):
                assert fitted.churn_probability(row[None, :], [before[-1]])[0, 0] < 0.5
        last = fitted.times[-1]
        assert (fitted.churn_probability(matrix[~found], [last])[:, 0] < 0.5).all()

    def test_no_churn_cannot_fit(self):
        with pytest.raises(ValueError, match="no churn"):
            fit_cox(np.zeros((5, 2)), np.ones(5), np.zeros(5, dtype=bool))


probability = st.floats(0, 1, allow_nan=False)


@pytest.fixture(scope="module")
def model():
    frame, churned = training_frame(800)
    return horizon_model(frame, churned, horizons=(60, 90, 180), classified=(90,))


class TestTheHorizonsOrder:
    @settings(max_examples=200, deadline=None)
    @given(st.integers(1, 20).flatmap(lambda n: st.tuples(
        arrays(np.float64, n, elements=probability),
        arrays(np.float64, (n, 3), elements=probability))))
    def test_each_horizon_s_probability_is_at_least_the_shorter_ones(self, drawn):
        base, longer = drawn
        out = monotone(base, longer)
        assert (out[:, 0] >= base).all() and (np.diff(out, axis=1) >= 0).all()
        assert (out <= 1).all()
        # nothing moves that was already in order
        ordered = np.column_stack([base, longer])
        in_order = (np.diff(ordered, axis=1) >= 0).all(axis=1)
        np.testing.assert_array_equal(out[in_order], longer[in_order])

    @settings(max_examples=50, deadline=None)
    @given(arrays(np.float64, (8, len(FEATURES)),
                  elements=st.one_of(st.floats(-50, 200), st.just(np.nan))),
           arrays(np.float64, 8, elements=probability))
    def test_a_model_mixing_survival_and_a_classifier_is_ordered_too(self, model, matrix,
                                                                     base):
        probabilities, _ = model.predict(matrix, base)
        assert (probabilities[:, 0] >= base).all()
        assert (np.diff(probabilities, axis=1) >= 0).all()
        assert ((probabilities >= 0) & (probabilities <= 1)).all()


class TestTheMedianAgreesWithTheProbabilities:
    def test_a_median_contradicting_a_probability_beside_it_is_not_given(self):
        horizons = (30, 60, 90)
        days = np.array([20.0, 20.0, 75.0, 75.0, np.nan, np.nan, 90.0])
        probabilities = np.array([
            [0.6, 0.7, 0.8],  # within 30 days, and every horizon says so
            [0.3, 0.7, 0.8],  # 20 days, but the 30-day classifier says below one half
            [0.1, 0.2, 0.5],  # within 90, not within 60
            [0.1, 0.2, 0.4],  # within 90, but the 90-day probability says not
            [0.1, 0.2, 0.4],  # no median (the curve stays above one half): nothing claimed
            [0.1, 0.2, 0.6],  # no median, but the 90-day probability says within 90
            [0.1, 0.4, 0.5],  # exactly 90 days, p(90) exactly one half: agree
        ])
        out = median_agreeing(days, probabilities, horizons)
        np.testing.assert_array_equal(out, [20.0, np.nan, 75.0, np.nan, np.nan, np.nan, 90.0])

    @settings(max_examples=50, deadline=None)
    @given(arrays(np.float64, (8, len(FEATURES)),
                  elements=st.one_of(st.floats(-50, 200), st.just(np.nan))))
    def test_every_median_a_model_gives_agrees_with_its_probabilities(self, trained, matrix):
        frame = pd.DataFrame(matrix, columns=FEATURES)
        out = trained.predict_frame(frame)
        given_ = out.expected_days_to_churn.notna()
        for horizon in (30, 60, 90, 180):
            column = ("churn_probability" if horizon == 30
                      else f"churn_probability_{horizon}d")
            within = out.expected_days_to_churn[given_] <= horizon
            assert ((out[column][given_] >= 0.5) == within).all()
        # and what is given is the curve's own median
        curves = trained.horizons.curves.median_days(matrix)
        np.testing.assert_array_equal(out.expected_days_to_churn[given_], curves[given_])


@pytest.fixture(scope="module")
def trained(model):
    frame, churned = training_frame(800)
    return TrainedModel(churn_classifier(FEATURES).fit(frame, churned),
                        ModelMetadata("churn_model_v1", FEATURES, 30, 7, {}), model)


class TestSettingsAndRecords:
    def test_horizons_default_to_60_and_90_days_and_are_configurable(self, tmp_path):
        assert load_settings(tmp_path).horizons == (60, 90)
        (tmp_path / "usage_features.yaml").write_text("horizons: [180, 45]\n")
        assert load_settings(tmp_path).horizons == (45, 180)
        (tmp_path / "usage_features.yaml").write_text("horizons: []\n")
        assert load_settings(tmp_path).horizons == ()
        (tmp_path / "usage_features.yaml").write_text("horizons: [60, soon]\n")
        with pytest.raises(SettingsError, match="horizons"):
            load_settings(tmp_path)

    def test_models_differing_only_in_their_horizons_are_two_versions(self):
        common = {"feature_service": "churn_model_v1", "features": FEATURES,
                  "horizon_days": 30, "interval_days": 7, "train_window": {},
                  "training_data_sha256": "ab" * 32}
        before = ModelMetadata(**common)
        versions = {before.model_version}
        for h, s in [((60, 90), "cd" * 32), ((60,), "cd" * 32), ((60, 90), "ef" * 32)]:
            horizons = {"horizons": list(h), "survival_data_sha256": s}
            versions.add(ModelMetadata(**common, horizons=horizons, version_sha256=(
                horizons_version_sha256(common["training_data_sha256"], horizons))
            ).model_version)
        assert before.model_version == "churn_model_v1-" + "ab" * 6  # as it always was
        assert len(versions) == 4

    def test_a_model_saved_with_horizons_before_keeps_its_version(self):
        """Saved without ``version_sha256``: its version, and so its report folder, stay."""
        saved = ModelMetadata("churn_model_v1", FEATURES, 30, 7, {},
                              training_data_sha256="ab" * 32,
                              horizons={"horizons": [60, 90], "survival_data_sha256": "cd" * 32})
        assert saved.model_version == "churn_model_v1-" + "ab" * 6

    def test_a_horizon_not_longer_than_the_classifier_s_is_refused(self):
        assert check_horizons([90, 60], 30) == (60, 90)
        with pytest.raises(LabelError, match="longer than the classifier's horizon"):
            check_horizons([30, 60], 30)

    def test_a_score_carries_each_horizon_after_churn_probability(self):
        score = Score("c1", START, "active", "v1", churn_probability=0.1,
                      horizon_probabilities=((60, 0.2), (90, None)),
                      expected_days_to_churn=140.5)
        out = score.to_dict()
        assert list(out)[4:7] == ["churn_probability", "churn_probability_60d",
                                  "churn_probability_90d"]
        assert out["churn_probability_60d"] == 0.2 and out["churn_probability_90d"] is None
        assert out["expected_days_to_churn"] == 140.5
        assert tuple(out) == score_columns([60, 90])
        assert "horizon_probabilities" not in out


@pytest.fixture(scope="module")
def fitted_horizons():
    """Customers whose hidden risk ``x1`` shows, with noise; 300 days of data."""
    # deferred: the module's other tests need no estimator
    from usage_features.training.estimators import logistic_baseline
    from usage_features.training.horizons import fit_horizons

    rng = np.random.default_rng(0)
    n = 400
    risk = rng.normal(size=n)
    signup = rng.uniform(0, 150, n)
    churn = signup + rng.exponential(150 * np.exp(-risk))
    table = customers([(f"c{i}", s, c if c < 400 else None)
                       for i, (s, c) in enumerate(zip(signup, churn))])
    end = START + timedelta(days=300)
    rows = survival_rows(table, START, end, 7)
    rows["x1"] = rows.customer_id.map(dict(zip(table.customer_id, risk))) + rng.normal(
        0, 0.3, len(rows))
    rows["x2"] = rng.normal(size=len(rows))
    found = fit_horizons(rows, ["x1", "x2"], (60, 90, 280), pd.Timestamp(end),
                         lambda y: logistic_baseline(["x1", "x2"]), "logistic regression")
    return rows, found


class TestFitHorizons:
    def test_each_testable_horizon_compares_survival_with_its_own_classifier(
            self, fitted_horizons):
        _, found = fitted_horizons
        table = found.table
        assert table.horizon_days.tolist() == [60, 60, 90, 90]
        assert table.model.tolist() == ["survival", "logistic regression (60-day classifier)",
                                        "survival", "logistic regression (90-day classifier)"]
        assert table.groupby("horizon_days").shipped.sum().tolist() == [1, 1]
        assert table.c_index.between(0.6, 1).all() and table.roc_auc.between(0.6, 1).all()
        # a later test period per horizon, after every row either model was fitted on
        assert (table.train_rows_survival > table.train_rows_classifier).all()
        shipped = {str(r.horizon_days): "survival" if r.model == "survival" else "classifier"
                   for r in table[table.shipped].itertuples()}
        assert found.summary["shipped"] == shipped

    def test_a_horizon_the_data_cannot_test_gets_no_probability(self, fitted_horizons):
        _, found = fitted_horizons
        assert set(found.summary["skipped"]) == {"280"}
        assert "280" not in found.summary["shipped"]
        assert found.model.horizons == (60, 90)

    def test_the_shipped_model_scores_every_row_in_order(self, fitted_horizons):
        rows, found = fitted_horizons
        base = np.full(len(rows), 0.05)
        probabilities, median = found.model.predict(rows[["x1", "x2"]].to_numpy(), base)
        assert (probabilities[:, 0] >= base).all()
        assert (probabilities[:, 1] >= probabilities[:, 0]).all()
        assert np.nanmin(median) > 0


def test_no_rows_score_to_nothing_whatever_ships(model):
    probabilities, median = model.predict(np.zeros((0, len(FEATURES))), np.zeros(0))
    assert probabilities.shape == (0, 3) and median.shape == (0,)


def test_the_survival_model_tested_at_a_time_knows_nothing_after_it(fitted_horizons):
    """Point in time: churns after the test period's start moved, or made stays, change
    nothing the survival model was fitted on for that test period."""
    # deferred: the module's other tests need no fit
    from usage_features.training.horizons import fit_before

    rows, _ = fitted_horizons
    split = pd.Timestamp(START + timedelta(days=200))
    matrix = rows[["x1", "x2"]].to_numpy()
    ends_after = (rows.event_timestamp + pd.to_timedelta(rows.duration_days, "D")) > split
    later = rows.duration_days.where(~ends_after, rows.duration_days + 300)
    stays = rows.churned & ~ends_after
    original = fit_before(rows, matrix, rows.duration_days, rows.churned, split)
    for duration, churned in ((later, rows.churned), (later, stays)):
        changed = fit_before(rows, matrix, duration, churned, split)
        np.testing.assert_array_equal(changed.coef, original.coef)
        np.testing.assert_array_equal(changed.cum_hazard, original.cum_hazard)
    assert ends_after.any() and (rows.churned & ends_after).any()  # the test can fail


def test_where_the_classifier_wins_it_ships_refitted_on_every_known_label(
        fitted_horizons, monkeypatch):
    # deferred: the module's other tests need no estimator
    from usage_features.training import horizons
    from usage_features.training.estimators import logistic_baseline
    from usage_features.training.selection import Selection

    rows, _ = fitted_horizons
    monkeypatch.setattr(horizons, "select", lambda table, by: Selection(
        table.model.iloc[1] if table.model.iloc[1].startswith("logistic (90") else "survival",
        None, {}, by))
    end = pd.Timestamp(START + timedelta(days=300))
    found = horizons.fit_horizons(rows, ["x1", "x2"], (60, 90), end,
                                  lambda y: logistic_baseline(["x1", "x2"]), "logistic")
    assert found.summary["shipped"] == {"60": "survival", "90": "classifier"}
    assert found.model.shipped(90) == "classifier" and found.model.shipped(60) == "survival"
    follow = (end - rows.event_timestamp) / pd.Timedelta(days=1)
    label = horizon_labels(rows.duration_days, rows.churned, follow, 90)
    known = ~np.isnan(label)
    expected = logistic_baseline(["x1", "x2"]).fit(rows[known], label[known].astype(int))
    matrix = rows[["x1", "x2"]].to_numpy()
    probabilities, _ = found.model.predict(matrix, np.zeros(len(rows)))
    raw = expected.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(probabilities[:, 1], np.maximum(raw, probabilities[:, 0]))


def test_the_concordance_index_is_computed_on_a_fixed_sample_of_a_large_test_period():
    mask = np.zeros(1000, dtype=bool)
    mask[::3] = True  # 334 rows
    np.testing.assert_array_equal(concordance_rows(mask, 334), mask)  # all: no sample
    sample = concordance_rows(mask, 100)
    assert sample.sum() == 100 and not (sample & ~mask).any()
    np.testing.assert_array_equal(sample, concordance_rows(mask, 100))  # the same each time

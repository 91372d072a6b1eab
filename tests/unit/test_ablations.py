"""The training ablation is derived from the feature groups of the spec."""

from usage_features.features.spec import Group, served_features
from usage_features.training.train import ABLATIONS


def test_each_group_is_refit_without_once():
    assert list(ABLATIONS) == [f"without {group} features" for group in Group]


def test_every_served_feature_is_dropped_in_exactly_one_ablation_and_nothing_else_is():
    dropped = [name for names in ABLATIONS.values() for name in names]
    assert sorted(dropped) == sorted(f.name for f in served_features())
    assert all(ABLATIONS.values())

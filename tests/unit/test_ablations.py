"""The training ablation is derived from the feature groups of the spec."""

from usage_features.features.spec import Group, served_features
from usage_features.training.train import ABLATED_GROUPS, ABLATIONS


def test_each_ablated_group_is_refit_without_once():
    assert list(ABLATIONS) == [f"without {group} features" for group in ABLATED_GROUPS]
    assert set(ABLATED_GROUPS) <= set(Group)


def test_an_ablation_drops_exactly_its_groups_served_features():
    for group, dropped in zip(ABLATED_GROUPS, ABLATIONS.values()):
        assert sorted(dropped) == sorted(f.name for f in served_features() if f.group == group)
        assert dropped


def test_a_feature_is_dropped_in_at_most_one_ablation():
    dropped = [name for names in ABLATIONS.values() for name in names]
    assert len(dropped) == len(set(dropped))

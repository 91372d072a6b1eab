"""The training ablation is derived from the feature groups of the spec."""

from usage_features.domain.vocabulary import parse_vocabulary
from usage_features.features.spec import Group, feature_spec, served_features
from usage_features.training.steps import ablations
from usage_features.training.train import ABLATED_GROUPS, ABLATIONS

DEFAULT_ABLATED = [g for g in ABLATED_GROUPS if g != Group.CORE_LOCK_IN]


def test_each_ablated_group_of_the_default_vocabulary_is_refit_without_once():
    assert list(ABLATIONS) == [f"without {group} features" for group in DEFAULT_ABLATED]
    assert set(ABLATED_GROUPS) <= set(Group)


def test_an_ablation_drops_exactly_its_groups_served_features():
    for group, dropped in zip(DEFAULT_ABLATED, ABLATIONS.values()):
        assert sorted(dropped) == sorted(f.name for f in served_features() if f.group == group)
        assert dropped


def test_a_feature_is_dropped_in_at_most_one_ablation():
    dropped = [name for names in ABLATIONS.values() for name in names]
    assert len(dropped) == len(set(dropped))


def test_a_declared_vocabulary_ablates_its_role_group_and_none_without_roles():
    with_roles = feature_spec(parse_vocabulary({"search": {}, "deal": {"role": "core"}}))
    assert "without core/lock-in features" in ablations(with_roles)
    assert ablations(with_roles)["without core/lock-in features"] == (
        "deal_count_30d", "days_since_last_core_event")
    no_roles = feature_spec(parse_vocabulary({"search": {}, "deal": {}}))
    assert list(ablations(no_roles)) == ["without decay features", "without adoption features"]

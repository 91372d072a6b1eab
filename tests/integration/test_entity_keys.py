"""Entity keys serialized without a proto per customer are Feast's own bytes, or not given."""

from __future__ import annotations

from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from hypothesis import given
from hypothesis import strategies as st

from usage_features.adapters.feast.online import string_entity_keys


def feast_s(join_key: str, value: str, version: int = 3) -> bytes:
    return serialize_entity_key(
        EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)]),
        entity_key_serialization_version=version)


@given(st.text(min_size=1, max_size=30), st.lists(st.text(max_size=60), max_size=50))
def test_each_key_is_the_one_feast_serializes(join_key, values):
    assert string_entity_keys(join_key, values, 3) == [feast_s(join_key, v) for v in values]


def test_another_version_or_a_value_that_is_not_a_string_is_left_to_feast():
    assert string_entity_keys("customer_id", ["cust-1"], 2) is None
    assert string_entity_keys("customer_id", ["cust-1", None], 3) is None

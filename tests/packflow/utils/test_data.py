"""packflow.utils.data: flattening, nested access and records_to_ndarray."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packflow.utils import (
    check_delimiter_collisions,
    flatten_dict,
    flatten_records,
    get_nested_field,
    get_nested_field_direct,
    records_to_ndarray,
    set_nested_field_direct,
    unflatten_dict,
)

# -- flatten_dict / flatten_records / unflatten_dict -------------------------------------------


def test_flatten_dict_joins_nested_keys_and_keeps_lists_and_empties() -> None:
    record = {"a": {"b": 1, "c": {"d": 2}}, "l": [1, {"x": 1}], "e": {}, "f": []}
    assert flatten_dict(record) == {"a.b": 1, "a.c.d": 2, "l": [1, {"x": 1}], "e": {}, "f": []}


def test_flatten_dict_flattens_lists_only_when_asked() -> None:
    record = {"l": [1, {"x": [2]}], "f": []}
    assert flatten_dict(record, flatten_lists=True) == {"l.0": 1, "l.1.x.0": 2, "f": []}


def test_flatten_dict_custom_delimiter() -> None:
    assert flatten_dict({"a": {"b": 1}}, delimiter="__") == {"a__b": 1}


def test_flatten_dict_duplicate_key_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"'a.b'"):
        flatten_dict({"a.b": 1, "a": {"b": 2}})


def test_flatten_dict_rejects_non_dicts() -> None:
    with pytest.raises(TypeError, match="dictionary-like"):
        flatten_dict([1])  # type: ignore[arg-type]


def test_flatten_records_and_its_errors() -> None:
    assert flatten_records([{"a": {"b": 1}}, {}]) == [{"a.b": 1}, {}]
    with pytest.raises(TypeError, match="must be a list"):
        flatten_records({"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="record 1 is not a dict"):
        flatten_records([{}, 3])  # type: ignore[list-item]


def test_flatten_does_not_mutate_input() -> None:
    record = {"a": {"b": [1, {"c": 2}]}}
    before = copy.deepcopy(record)
    flatten_dict(record, flatten_lists=True)
    assert record == before


def test_unflatten_dict_and_its_conflicts() -> None:
    assert unflatten_dict({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    with pytest.raises(ValueError, match="conflicts"):
        unflatten_dict({"a": 1, "a.b": 2})


NAMES = st.text(alphabet="abcxyz_", min_size=1, max_size=3)
NESTED = st.recursive(
    st.one_of(st.integers(), st.none(), st.text(max_size=3), st.just([]), st.just({})),
    lambda inner: st.dictionaries(NAMES, inner, min_size=1, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200)
@given(st.dictionaries(NAMES, NESTED, max_size=4))
def test_flatten_then_unflatten_round_trips(record: dict[str, Any]) -> None:
    flat = flatten_dict(record)
    assert all(not isinstance(v, dict) or v == {} for v in flat.values())
    assert unflatten_dict(flat) == record


@settings(max_examples=200)
@given(st.dictionaries(NAMES, NESTED, max_size=4))
def test_every_flat_key_is_reachable_by_both_nested_getters(record: dict[str, Any]) -> None:
    for key, value in flatten_dict(record).items():
        assert get_nested_field(record, key) == value
        assert get_nested_field_direct(record, key) == value


# -- nested getters / setter -------------------------------------------------------------------


def test_get_nested_field_prefers_the_literal_key() -> None:
    assert get_nested_field({"a.b": 1, "a": {"x": 2}}, "a.b") == 1
    assert get_nested_field({"foo": {"bar": 5}}, "foo.bar") == 5


def test_get_nested_field_returns_none_for_misses_and_non_empty_subdicts() -> None:
    assert get_nested_field({"a": {"b": 1}}, "a.c") is None
    assert get_nested_field({"a": {"b": 1}}, "a.b.c") is None
    assert get_nested_field({"a": {"b": {"c": 1}}}, "a.b") is None
    assert get_nested_field({"a": {"b": {}}}, "a.b") == {}


def test_get_nested_field_does_not_index_lists_but_reaches_split_keys() -> None:
    assert get_nested_field({"a": [1, 2]}, "a.0") is None
    assert get_nested_field({"a": {"b.c": 4}}, "a.b.c") == 4
    assert get_nested_field({"a": {"b": 1}}, "a/b", delimiter="/") == 1


def test_get_nested_field_ambiguity_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        get_nested_field({"a": {"b.c": 1, "b": {"c": 2}}}, "a.b.c")


def test_get_nested_field_direct_walks_dicts_and_may_return_subdicts() -> None:
    record = {"a.b": 0, "a": {"b": {"c": 1}}, "l": [{"x": 1}]}
    assert get_nested_field_direct(record, "a.b") == 0
    assert get_nested_field_direct(record, "a.b.c") == 1
    assert get_nested_field_direct({"a": {"b": {"c": 1}}}, "a.b") == {"c": 1}
    assert get_nested_field_direct(record, "l.0.x") is None
    assert get_nested_field_direct(record, "a.b.c.d") is None
    assert get_nested_field_direct({"a": {"b": 1}}, "a|b", "|") == 1


def test_set_nested_field_direct_creates_dicts_in_place() -> None:
    obj: dict[str, Any] = {"a": {"x": 1}}
    assert set_nested_field_direct(obj, "a.b.c", 5) is None  # type: ignore[func-returns-value]
    assert obj == {"a": {"x": 1, "b": {"c": 5}}}
    set_nested_field_direct(obj, "top", 1)
    assert obj["top"] == 1


def test_set_nested_field_direct_is_a_no_op_through_a_non_dict() -> None:
    obj: dict[str, Any] = {"a": 1}
    set_nested_field_direct(obj, "a.b", 2)
    assert obj == {"a": 1}


def test_check_delimiter_collisions_lists_every_path_in_order() -> None:
    record = {"a.b": 1, "c": {"d.e": 2, "f": {"g.h": 3}}, "ok": {"x": 1}}
    assert check_delimiter_collisions(record, ".") == ["a.b", "c.d.e", "c.f.g.h"]
    assert check_delimiter_collisions({"a": {"b": 1}}, ".") == []
    assert check_delimiter_collisions({"a/b": 1}, "/", path="root") == ["root/a/b"]


# -- records_to_ndarray ------------------------------------------------------------------------


def test_records_to_ndarray_rows_by_features() -> None:
    array = records_to_ndarray([{"a": 1, "b": {"c": 2}}, {"a": 3, "b": {"c": 4}}], ["b.c", "a"])
    assert array.tolist() == [[2, 1], [4, 3]]


def test_records_to_ndarray_missing_is_none_and_object_dtype() -> None:
    array = records_to_ndarray([{"a": 1}], ["a", "z"])
    assert array.dtype == object
    assert array.tolist() == [[1, None]]


def test_records_to_ndarray_dtype_and_empty() -> None:
    assert records_to_ndarray([{"a": 1}], ["a"], dtype="float32").dtype == np.float32
    assert records_to_ndarray([], ["a"]).shape == (0,)


def test_records_to_ndarray_errors() -> None:
    with pytest.raises(ValueError, match="list of dictionaries"):
        records_to_ndarray({"a": 1}, ["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="index 1 is not a dictionary"):
        records_to_ndarray([{"a": 1}, 2], ["a"])  # type: ignore[list-item]


@settings(max_examples=100)
@given(
    n_records=st.integers(0, 20),
    features=st.lists(st.sampled_from(["a", "b.c", "d"]), min_size=1, max_size=5),
)
def test_records_to_ndarray_shape_is_records_by_features(
    n_records: int, features: list[str]
) -> None:
    records = [{"a": i, "b": {"c": -i}, "d": 0.5} for i in range(n_records)]
    array = records_to_ndarray(records, features)
    assert array.shape == ((n_records, len(features)) if n_records else (0,))

"""The records preprocessor: rename, filter/order, flatten and delimiter collisions, as 0.4.1."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from packflow.backend.configuration import BackendConfig
from packflow.backend.preprocessors import RecordsPreprocessor
from packflow.exceptions import PreprocessorRuntimeError
from packflow.utils import (
    check_delimiter_collisions,
    flatten_dict,
    get_nested_field_direct,
    set_nested_field_direct,
)
from tests.support.records import PATHS, RECORDS


def records_pp(**options: Any) -> RecordsPreprocessor:
    return RecordsPreprocessor(BackendConfig(**options))


def test_records_without_options_returns_the_same_list() -> None:
    pp = records_pp()
    records = [{"a": {"b": 1}}]
    assert pp.passthrough is True
    assert pp(records) is records


# -- rename + features ----------------------------------------------------------------------------


def test_upstream_example_rename_targets_are_kept_beside_feature_names() -> None:
    pp = records_pp(
        feature_names=["feature_0"], rename_fields={"bar": "feature_0", "foo": "feature_1"}
    )
    assert pp([{"foo": 0, "bar": 1}]) == [{"feature_0": 1, "feature_1": 0}]


def test_features_filter_and_order_fields() -> None:
    pp = records_pp(feature_names=["c", "a"])
    out = pp([{"a": 1, "b": 2, "c": 3}])
    assert out == [{"c": 3, "a": 1}]
    assert list(out[0]) == ["c", "a"]


def test_dotted_features_reach_into_nested_dicts_and_are_written_nested() -> None:
    pp = records_pp(feature_names=["user.geo.lat", "user.age", "id"])
    record = {"id": 7, "user": {"age": 30, "geo": {"lat": 1.5, "lon": 2.0}}, "x": 0}
    assert pp([record]) == [{"user": {"geo": {"lat": 1.5}, "age": 30}, "id": 7}]


def test_absent_features_and_present_none_features_are_left_out_as_0_4_1() -> None:
    pp = records_pp(feature_names=["a", "b.c", "d"])
    assert pp([{"a": None, "b": {}}, {"b": 5}]) == [{}, {}]


def test_nested_rename_source_and_nested_target() -> None:
    pp = records_pp(feature_names=["score"], rename_fields={"m.b": "score", "m.a": "out.a"})
    assert pp([{"m": {"a": 1, "b": 2}}]) == [{"score": 2, "out": {"a": 1}}]


def test_feature_named_like_a_rename_target_falls_back_to_the_original_field() -> None:
    pp = records_pp(feature_names=["y"], rename_fields={"x": "y"})
    assert pp([{"x": 1, "y": 2}, {"y": 3}]) == [{"y": 1}, {"y": 3}]


def test_feature_and_rename_target_sharing_a_prefix_merge_and_never_touch_input() -> None:
    # "a" is a prefix of the nested rename target "a.z": handled by the interpreter.
    pp = records_pp(feature_names=["a", "a.y"], rename_fields={"q": "a.z"})
    record = {"a": {"x": 1, "y": 2}, "q": 9}
    before = copy.deepcopy(record)
    out = pp([record])
    assert out == [{"a": {"z": 9, "y": 2}}]  # as 0.4.x: "a" is skipped, "a.y" merges in
    assert record == before


def test_feature_whose_path_an_earlier_feature_set_is_not_read_again() -> None:
    # As 0.4.x: "a.c" creates out["a"], so "a" (already present) is skipped.
    pp = records_pp(feature_names=["a.c", "a", "b"])
    assert pp([{"a": {"c": 1, "d": 2}, "b": 3}]) == [{"a": {"c": 1}, "b": 3}]


def test_repeated_feature_names_appear_once() -> None:
    assert records_pp(feature_names=["a", "a"])([{"a": 1}]) == [{"a": 1}]


def test_renamed_value_written_into_a_callers_nested_dict_copies_it() -> None:
    pp = records_pp(feature_names=["inner", "inner.new"], rename_fields={"v": "inner.new"})
    record = {"inner": {"old": 1}, "v": 2}
    before = copy.deepcopy(record)
    pp([record])
    assert record == before


def test_custom_delimiter() -> None:
    pp = records_pp(feature_names=["a/b"], nested_field_delimiter="/")
    assert pp([{"a": {"b": 1}, "a.b": 5}]) == [{"a": {"b": 1}}]


def test_non_dict_record_names_its_index() -> None:
    pp = records_pp(feature_names=["a"])
    with pytest.raises(PreprocessorRuntimeError, match="record 1 is not a dict") as info:
        pp([{"a": 1}, 5])  # type: ignore[list-item]
    assert info.value.record_index == 1


def test_non_list_input_is_a_clear_error() -> None:
    with pytest.raises(PreprocessorRuntimeError, match="expected a list of records"):
        records_pp(feature_names=["a"])({"a": 1})  # type: ignore[arg-type]


# -- rename without features (0.4.1: the original stays beside the new name) ----------------------


def test_rename_without_features_keeps_the_original_beside_the_new_name() -> None:
    pp = records_pp(rename_fields={"a": "x"})
    out = pp([{"a": 1, "b": 2}])
    assert out == [{"x": 1, "a": 1, "b": 2}]
    assert list(out[0]) == ["x", "a", "b"]


def test_rename_without_features_an_original_field_wins_over_a_renamed_one() -> None:
    pp = records_pp(rename_fields={"a": "b"})
    out = pp([{"a": 1, "b": 2}])
    assert out == [{"b": 2, "a": 1}]
    assert list(out[0]) == ["b", "a"]


def test_rename_without_features_of_a_nested_field_adds_no_empty_parent() -> None:
    pp = records_pp(rename_fields={"m.a": "score", "m.b": "n.b"})
    record = {"m": {"a": 1, "b": 2, "c": 3}, "k": 0}
    before = copy.deepcopy(record)
    assert pp([record]) == [{"score": 1, "n": {"b": 2}, "m": {"a": 1, "b": 2, "c": 3}, "k": 0}]
    assert record == before


def test_rename_without_features_skips_none_and_absent_sources() -> None:
    pp = records_pp(rename_fields={"a": "x", "zz": "y"})
    assert pp([{"a": None}]) == [{"a": None}]


# -- flattening -----------------------------------------------------------------------------------


def test_flatten_with_features_uses_flat_keys() -> None:
    pp = records_pp(flatten_nested_inputs=True, feature_names=["user.age", "tags", "e"])
    record = {"user": {"age": 3, "geo": {"lat": 1}}, "tags": ["a", "b"], "e": {}}
    assert pp([record]) == [{"user.age": 3, "tags": ["a", "b"], "e": {}}]


def test_flatten_lists_indexes_list_items() -> None:
    pp = records_pp(
        flatten_nested_inputs=True, flatten_lists=True, feature_names=["tags.1", "v.0.k"]
    )
    assert pp([{"tags": ["a", "b"], "v": [{"k": 1}]}]) == [{"tags.1": "b", "v.0.k": 1}]


def test_flatten_lists_only_canonical_indexes_match() -> None:
    pp = records_pp(
        flatten_nested_inputs=True, flatten_lists=True, feature_names=["t.01", "t.\u00b2", "t.9"]
    )
    assert pp([{"t": list(range(5))}]) == [{}]


def test_flatten_without_features_flattens_the_whole_record_beside_the_renames() -> None:
    pp = records_pp(flatten_nested_inputs=True, rename_fields={"a.b": "ab"})
    assert pp([{"a": {"b": 1, "c": 2}, "d": [1]}]) == [{"ab": 1, "a.b": 1, "a.c": 2, "d": [1]}]


def test_flatten_duplicate_keys_name_the_record() -> None:
    pp = records_pp(flatten_nested_inputs=True)
    with pytest.raises(PreprocessorRuntimeError, match=r"record 1.*duplicated key 'a.b'") as info:
        pp([{"a": 1}, {"a.b": 1, "a": {"b": 2}}])
    assert info.value.record_index == 1


def test_flatten_keys_that_collide_anywhere_in_the_record_are_an_error() -> None:
    pp = records_pp(flatten_nested_inputs=True, feature_names=["x"])
    with pytest.raises(PreprocessorRuntimeError, match=r"record 0.*duplicated key 'a.b'"):
        pp([{"a.b": 1, "a": {"b": 2}, "x": 1}])


# -- delimiter collisions -------------------------------------------------------------------------


def test_collision_on_a_requested_path_names_record_and_key_path() -> None:
    pp = records_pp(feature_names=["a.b.c"])
    with pytest.raises(PreprocessorRuntimeError) as info:
        pp([{"a": {"b": {"c": 1}}}, {"a": {"b.c": 1, "b": {"c": 2}}}])
    err = info.value
    assert err.record_index == 1
    assert err.field == "a.b.c"
    assert "record 1" in str(err)
    assert "Keys containing the delimiter '.' were found: ['a.b.c']" in str(err)


def test_collision_in_a_rename_source_is_detected() -> None:
    pp = records_pp(feature_names=["x"], rename_fields={"a.b": "x"})
    with pytest.raises(PreprocessorRuntimeError, match=r"were found: \['a.b'\]"):
        pp([{"a.b": 1}])


def test_the_documented_collision_error_names_every_key_with_the_delimiter() -> None:
    # As 0.4.1 documents: with a nested path requested, any key containing the delimiter,
    # even off the requested paths, is an error.
    pp = records_pp(feature_names=["a.b"])
    with pytest.raises(PreprocessorRuntimeError) as info:
        pp([{"a": {"b": 1}}, {"field.name": 42, "a": {"b": 1, "x.y": 2}}])
    assert "Keys containing the delimiter '.' were found: ['field.name', 'a.x.y']" in str(
        info.value
    )
    assert info.value.record_index == 1


def test_ignore_delimiter_collisions_lets_the_literal_key_win() -> None:
    pp = records_pp(feature_names=["a.b"], ignore_delimiter_collisions=True)
    assert pp([{"a.b": 1, "a": {"b": 2}}]) == [{"a": {"b": 1}}]


def test_plain_feature_names_never_check_collisions() -> None:
    pp = records_pp(feature_names=["x"])
    assert pp([{"x": 1, "a.b": 2}]) == [{"x": 1}]


# -- properties -----------------------------------------------------------------------------------


def _reference_0_4_1(config: BackendConfig, records: list[dict[str, Any]]) -> Any:
    """packflow 0.4.1's RecordsPreprocessor.process, ported line by line (non-flatten mode)."""
    d = config.nested_field_delimiter
    uses_nested = any(d in k for k in config.rename_fields) or any(
        d in f for f in config.feature_names
    )
    if uses_nested and not config.ignore_delimiter_collisions:
        for obj in records:
            if check_delimiter_collisions(obj, d):
                return "error"
    out = []
    for obj in copy.deepcopy(records):
        processed: dict[str, Any] = {}
        for key, new in config.rename_fields.items():
            value = get_nested_field_direct(obj, key, d)
            if value is not None:
                if d in new:
                    set_nested_field_direct(processed, new, value, d)
                else:
                    processed[new] = value
        if config.feature_names:
            for feature in config.feature_names:
                if get_nested_field_direct(processed, feature, d) is None:
                    value = get_nested_field_direct(obj, feature, d)
                    if value is not None:
                        if d in feature:
                            set_nested_field_direct(processed, feature, value, d)
                        else:
                            processed[feature] = value
        else:
            processed.update(obj)
        out.append(processed)
    return out


def _is_cyclic(value: Any, seen: tuple[int, ...] = ()) -> bool:
    if isinstance(value, dict | list):
        if id(value) in seen:
            return True
        items = value.values() if isinstance(value, dict) else value
        return any(_is_cyclic(item, (*seen, id(value))) for item in items)
    return False


def test_a_value_both_renamed_and_selected_is_copied_where_0_4_1_made_a_cycle() -> None:
    # 0.4.1 put the same dict under the new name and then inside it (processed["a"] is
    # obj["a.b"], then processed["a"]["b"] = obj["a.b"]): a record that refers to itself,
    # which no JSON encoder can write. We keep the values and leave out the cycle.
    config = BackendConfig(
        feature_names=["a.b"], rename_fields={"a.b": "a"}, ignore_delimiter_collisions=True
    )
    reference = _reference_0_4_1(config, [{"a.b": {}}])
    assert _is_cyclic(reference)
    assert RecordsPreprocessor(config)([{"a.b": {}}]) == [{"a": {"b": {}}}]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=RECORDS,
    features=st.lists(PATHS, max_size=4),
    renames=st.dictionaries(PATHS, PATHS, max_size=2),
    ignore=st.booleans(),
)
@example(records=[{"a.b": 1}], features=["a.b"], renames={"a.b": "a"}, ignore=True)
def test_records_match_a_line_by_line_port_of_0_4_1_and_leave_the_input_alone(
    records: list[dict[str, Any]], features: list[str], renames: dict[str, str], ignore: bool
) -> None:
    config = BackendConfig(
        feature_names=features, rename_fields=renames, ignore_delimiter_collisions=ignore
    )
    before = copy.deepcopy(records)
    try:
        ours: Any = RecordsPreprocessor(config)(records)
    except PreprocessorRuntimeError:
        ours = "error"
    expected = _reference_0_4_1(config, records) if (features or renames) else records
    assume(not _is_cyclic(expected))  # 0.4.1's self-referencing records: the test above
    assert ours == expected
    if ours != "error":  # key order too
        assert [list(r) for r in ours] == [list(r) for r in expected]
    assert records == before


@settings(max_examples=150)
@given(
    records=RECORDS,
    features=st.lists(PATHS, min_size=1, max_size=4, unique=True),
    lists=st.booleans(),
)
def test_flatten_mode_features_equal_the_flattened_record(
    records: list[dict[str, Any]], features: list[str], lists: bool
) -> None:
    pp = records_pp(flatten_nested_inputs=True, flatten_lists=lists, feature_names=features)
    for record in records:
        try:
            flat = flatten_dict(record, ".", lists)
        except ValueError:
            with pytest.raises(PreprocessorRuntimeError, match="duplicated key"):
                pp([record])
            continue
        (out,) = pp([record])
        assert out == {f: flat[f] for f in features if flat.get(f) is not None}


PLAIN_KEYS = st.sampled_from(["k1", "k2", "k3", "k4", "k5"])


@settings(max_examples=100)
@given(
    records=st.lists(st.dictionaries(PLAIN_KEYS, st.integers(), max_size=5), max_size=5),
    renames=st.dictionaries(PLAIN_KEYS, st.sampled_from(["r1", "r2"]), max_size=2),
    features=st.lists(st.sampled_from(["k1", "k2", "r1", "r2"]), min_size=1, unique=True),
)
def test_rename_then_filter(
    records: list[dict[str, Any]], renames: dict[str, str], features: list[str]
) -> None:
    pp = records_pp(rename_fields=renames, feature_names=features)
    out = pp(records)
    assert len(out) == len(records)
    for record, row in zip(records, out, strict=True):
        expected: dict[str, Any] = {}
        for old, new in renames.items():  # renames first; later renames overwrite
            if old in record:
                expected[new] = record[old]
        for name in features:  # then features, not re-read when a rename set them
            if name not in expected and record.get(name) is not None:
                expected[name] = record[name]
        assert row == expected
        assert set(row) <= set(features) | set(renames.values())

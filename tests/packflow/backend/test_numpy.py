"""The numpy preprocessor: records -> ndarray, 0.4.1's inferred dtype or a strict one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packflow.backend.configuration import BackendConfig
from packflow.backend.preprocessors import NumpyPreprocessor
from packflow.exceptions import PreprocessorInitError, PreprocessorRuntimeError


def numpy_pp(**options: Any) -> NumpyPreprocessor:
    return NumpyPreprocessor(BackendConfig(input_format="numpy", **options))  # type: ignore[arg-type]


def test_numpy_requires_feature_names() -> None:
    with pytest.raises(PreprocessorInitError, match="feature_names"):
        numpy_pp()


def test_numpy_builds_rows_by_features_with_nested_paths_and_renames() -> None:
    pp = numpy_pp(feature_names=["x", "b"], rename_fields={"a.x": "x"})
    array = pp([{"a": {"x": 1}, "b": 2}, {"a": {"x": 3}, "b": 4}])
    assert array.shape == (2, 2)
    assert array.dtype.kind == "i"
    assert array.tolist() == [[1, 2], [3, 4]]


def test_numpy_infers_float_dtype_for_mixed_numbers_and_bools() -> None:
    array = numpy_pp(feature_names=["a", "b"])([{"a": 1, "b": 0.5}, {"a": True, "b": 2}])
    assert array.dtype == np.float64


def test_numpy_empty_batch_has_shape_0_as_0_4_1() -> None:
    array = numpy_pp(feature_names=["a", "b", "c"])([])
    assert (array.shape, array.dtype) == ((0,), np.float64)


def test_numpy_missing_or_none_gives_an_object_array_holding_none() -> None:
    pp = numpy_pp(feature_names=["a", "score"], rename_fields={"m.s": "score"})
    array = pp([{"a": 1, "m": {"s": 2}}, {"a": None, "m": {}}])
    assert array.dtype == object
    assert array.tolist() == [[1, 2], [None, None]]


def test_numpy_strings_give_a_string_array() -> None:
    array = numpy_pp(feature_names=["a", "b"])([{"a": 1, "b": "3"}, {"a": "xy", "b": 2.5}])
    assert array.dtype.kind == "U"
    assert array.tolist() == [["1", "3"], ["xy", "2.5"]]


def test_numpy_a_sub_dict_named_literally_is_a_cell_and_lists_are_not_indexed() -> None:
    array = numpy_pp(feature_names=["b", "c.0"])([{"b": {"k": 1}, "c": [5]}])
    assert array.tolist() == [[{"k": 1}, None]]


def test_numpy_dtype_gives_a_strict_array_of_that_dtype() -> None:
    pp = numpy_pp(feature_names=["a", "b.c"], numpy_dtype="float32")
    array = pp([{"a": 1, "b": {"c": True}}, {"a": 2.5, "b": {"c": 3}}])
    assert array.dtype == np.float32
    assert array.tolist() == [[1.0, 1.0], [2.5, 3.0]]
    assert pp([]).shape == (0, 2)


def test_numpy_dtype_missing_names_record_and_field() -> None:
    pp = numpy_pp(feature_names=["a", "score"], rename_fields={"m.s": "score"}, numpy_dtype="f4")
    with pytest.raises(PreprocessorRuntimeError) as info:
        pp([{"a": 1, "m": {"s": 2}}, {"a": 1, "m": {}}])
    err = info.value
    assert (err.record_index, err.field) == (1, "m.s")
    assert "record 1, field 'm.s' is missing" in str(err)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("3", "is not a number (got a str: '3')"),
        ([1, 2], "is not a number (got a list"),
        ({"k": 1}, "is not a number (got a dict"),  # a sub-dict is not a value
        (None, "is None"),
    ],
)
def test_numpy_dtype_non_numeric_names_record_field_and_type(value: Any, problem: str) -> None:
    pp = numpy_pp(feature_names=["a", "b.c"], numpy_dtype="float64")
    with pytest.raises(PreprocessorRuntimeError) as info:
        pp([{"a": 1, "b": {"c": 2}}, {"a": 2, "b": {"c": 3}}, {"a": 3, "b": {"c": value}}])
    err = info.value
    assert (err.record_index, err.field) == (2, "b.c")
    assert f"record 2, field 'b.c' {problem}" in str(err)


def test_numpy_dtype_must_be_numeric() -> None:
    with pytest.raises(PreprocessorInitError, match="not numeric"):
        numpy_pp(feature_names=["a"], numpy_dtype="str")
    with pytest.raises(PreprocessorInitError, match="not a numpy dtype"):
        numpy_pp(feature_names=["a"], numpy_dtype="float-ish")


def test_numpy_non_dict_record_names_its_index() -> None:
    with pytest.raises(PreprocessorRuntimeError, match="record 0 is not a dict"):
        numpy_pp(feature_names=["a"])([[1]])  # type: ignore[list-item]


@settings(max_examples=100)
@given(
    n_features=st.integers(1, 6),
    values=st.lists(
        st.lists(st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6)), min_size=6, max_size=6),
        min_size=1,
        max_size=20,
    ),
)
def test_numpy_shape_is_records_by_features(n_features: int, values: list[list[float]]) -> None:
    names = [f"g{i % 2}.f{i}" for i in range(n_features)]
    records = [
        {
            "g0": {n.split(".")[1]: row[i] for i, n in enumerate(names) if n.startswith("g0")},
            "g1": {n.split(".")[1]: row[i] for i, n in enumerate(names) if n.startswith("g1")},
        }
        for row in values
    ]
    array = numpy_pp(feature_names=names)(records)
    assert array.shape == (len(records), n_features)
    assert array.tolist() == [
        [float(v) if array.dtype.kind == "f" else v for v in row[:n_features]] for row in values
    ]

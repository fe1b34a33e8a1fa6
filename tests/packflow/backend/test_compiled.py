"""The compiled records select (packflow/backend/_compiled.py) gives the interpreter's results."""

from __future__ import annotations

import copy
import gc
import json
import platform
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packflow.backend._compiled import _SMALL_BATCH
from packflow.backend.configuration import BackendConfig
from packflow.backend.preprocessors import RecordsPreprocessor
from packflow.utils import set_nested_field_direct
from tests.support.records import LEAVES, PATHS, RECORDS

BENCH_LIKE: dict[str, Any] = {
    "feature_names": ["user.age", "user.geo.lat", "device.os", "metrics.a", "score"],
    "rename_fields": {"metrics.b": "score"},
}


def records_pp(**options: Any) -> RecordsPreprocessor:
    return RecordsPreprocessor(BackendConfig(**options))


def _complete(i: int) -> bool:
    return i % 7 != 3 and i % 5 != 4 and i % 11 != 6


def _event(i: int) -> dict[str, Any]:
    """A record holding every ``BENCH_LIKE`` field, unless ``_complete(i)`` is false."""
    record: dict[str, Any] = {
        "user": {"age": 20 + i, "geo": {"lat": 48.1 + i, "lon": 11.5}},
        "device": {"os": "linux"},
        "metrics": {"a": i * 0.5, "b": i % 3},
    }
    if i % 7 == 3:
        del record["device"]
    if i % 5 == 4:
        record["metrics"]["b"] = None
    if i % 11 == 6:
        record["user"] = "not a dict"
    return record


def _same(ours: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert ours == expected
    assert json.dumps(ours) == json.dumps(expected)  # keys in the same order, at every depth


def test_a_large_batch_mixing_complete_and_incomplete_records_equals_the_interpreter() -> None:
    pp = records_pp(**BENCH_LIKE)
    batch = [_event(i) for i in range(3 * _SMALL_BATCH)]
    before = copy.deepcopy(batch)
    _same(pp(batch), [pp._direct(record) for record in batch])
    assert batch == before


DENSE_LEAVES = st.one_of(st.none(), st.integers(-5, 5), st.text("xy", max_size=2), st.builds(dict))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=RECORDS,
    features=st.lists(PATHS, min_size=1, max_size=4),
    renames=st.dictionaries(PATHS, PATHS, max_size=2),
)
def test_the_compiled_transform_matches_the_interpreter(
    records: list[dict[str, Any]], features: list[str], renames: dict[str, str]
) -> None:
    pp = records_pp(feature_names=features, rename_fields=renames, ignore_delimiter_collisions=True)
    interpreted = [pp._direct(record) for record in records]
    out = pp(records)
    assert out == interpreted
    assert [list(r) for r in out] == [list(r) for r in interpreted]


def test_the_compiled_transform_is_used_for_prefix_free_outputs() -> None:
    assert records_pp(feature_names=["a.b", "c"])._transform_record.__name__ == "select"
    # "a" is a prefix of "a.b": an output value could be a dict to write into
    assert records_pp(feature_names=["a", "a.b"])._transform_record.__name__ == "_direct"


FLAT_KEYS = st.sampled_from(["a", "b", "c"])


FLAT_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.dictionaries(FLAT_KEYS, inner, max_size=3), st.lists(inner, max_size=2)
    ),
    max_leaves=8,
)


@settings(max_examples=200)
@given(
    records=st.lists(st.dictionaries(FLAT_KEYS, FLAT_VALUES, max_size=3), min_size=1, max_size=4),
    features=st.lists(PATHS, min_size=1, max_size=4),
    renames=st.dictionaries(PATHS, PATHS, max_size=2),
)
def test_compiled_flatten_select_matches_the_interpreter_on_clean_batches(
    records: list[dict[str, Any]], features: list[str], renames: dict[str, str]
) -> None:
    pp = records_pp(flatten_nested_inputs=True, feature_names=features, rename_fields=renames)
    assert pp._compiled_flat is not None
    interpreted = [pp._flat_impl(record, True) for record in records]
    out = pp(records)
    assert out == interpreted
    assert [list(r) for r in out] == [list(r) for r in interpreted]


@st.composite
def batches(draw: st.DrawFn, paths: list[str]) -> list[dict[str, Any]]:
    """Records holding most of ``paths`` (so most take the compiled fast path)."""
    records = []
    for _ in range(draw(st.integers(1, 3))):
        record: dict[str, Any] = {}
        for path in paths:
            if draw(st.integers(0, 9)):
                set_nested_field_direct(record, path, draw(DENSE_LEAVES))
        records.append(record)
    return records * (_SMALL_BATCH // len(records) + 1)


@settings(max_examples=150)
@given(
    data=st.data(),
    features=st.lists(PATHS, min_size=1, max_size=4),
    renames=st.dictionaries(PATHS, PATHS, max_size=2),
    flatten=st.booleans(),
)
def test_large_batches_equal_the_interpreter(
    data: st.DataObject, features: list[str], renames: dict[str, str], flatten: bool
) -> None:
    pp = records_pp(
        feature_names=features,
        rename_fields=renames,
        flatten_nested_inputs=flatten,
        ignore_delimiter_collisions=True,
    )
    batch = data.draw(batches([*renames, *features]))
    if flatten:
        assert pp._compiled_flat is not None
        expected = [pp._flat_impl(record, True) for record in batch]
    else:
        expected = [pp._direct(record) for record in batch]
    _same(pp(batch), expected)


@pytest.mark.skipif(
    platform.python_implementation() != "CPython", reason="CPython's generational collector"
)
def test_a_batch_is_built_without_promoting_its_dicts_to_an_older_generation() -> None:
    # A collection at almost every allocation: any output dict tracked while the batch is
    # being built would survive one and leave the young generation.
    pp = records_pp(**BENCH_LIKE)
    batch = [_event(i) for i in range(3 * _SMALL_BATCH)]
    thresholds = gc.get_threshold()
    gc.collect()
    gc.set_threshold(1, 1, 1)
    try:
        out = pp(batch)
    finally:
        gc.set_threshold(*thresholds)
    young = {id(obj) for obj in gc.get_objects(generation=0)}
    complete = [row for i, row in enumerate(out) if _complete(i)]
    assert len(complete) > len(out) // 2
    assert all(id(row) in young and id(row["user"]) in young for row in complete)
    assert all(gc.is_tracked(row) and gc.is_tracked(row["user"]) for row in complete)

"""Keys holding the delimiter: the per-record scan and the batch search agree with 0.4.1's check."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from packflow.backend._delimiters import DelimiterKeys, has_delimiter_key
from packflow.utils import check_delimiter_collisions
from tests.support.records import KEYS, VALUES


@settings(max_examples=300)
@given(record=st.dictionaries(KEYS, VALUES, max_size=4), lists=st.booleans())
def test_the_delimiter_key_scan_agrees_with_check_delimiter_collisions(
    record: dict[str, Any], lists: bool
) -> None:
    found = has_delimiter_key(record, ".", False)
    assert found == bool(check_delimiter_collisions(record, "."))
    if found:
        assert has_delimiter_key(record, ".", True)


JSONISH_KEYS = st.sampled_from(["a", "b", "a.b", "", "x__y", 'q"t', "b\\s", "é.ü", "1.5"])


JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["s", "a.b", 'x":', "1.5", 'k.": 1', "\\"]),
    ),
    lambda inner: st.one_of(
        st.dictionaries(JSONISH_KEYS, inner, max_size=3), st.lists(inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=400)
@given(
    records=st.lists(st.dictionaries(JSONISH_KEYS, JSONISH, max_size=4), max_size=3),
    delimiter=st.sampled_from([".", "__", "é"]),
)
def test_the_batch_key_search_never_misses_a_key_with_the_delimiter(
    records: list[dict[str, Any]], delimiter: str
) -> None:
    clean = DelimiterKeys(delimiter).none_in(records)
    if clean:  # a "no" must be exact, lists included; a "maybe" is checked record by record
        assert not any(has_delimiter_key(r, delimiter, True) for r in records)


def test_the_batch_key_search_answers_no_for_plain_records() -> None:
    keys = DelimiterKeys(".")
    assert keys.none_in([{"a": 1.5, "b": {"c": "x.y", "d": [1.25, {"e": None}]}}])
    assert not keys.none_in([{"a": [{"b.c": 1}]}])
    assert not keys.none_in([{"a": np.float32(1)}])  # orjson cannot serialise it: maybe


def test_the_delimiter_key_scan_handles_non_string_keys() -> None:
    assert has_delimiter_key({1: {"a.b": 1}}, ".", False)  # type: ignore[dict-item]
    assert not has_delimiter_key({1: {"ab": 1}}, ".", False)  # type: ignore[dict-item]

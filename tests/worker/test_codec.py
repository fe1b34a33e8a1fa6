"""Decoding inputs, encoding outputs and dead letters."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from packflow import InferenceBackend
from worker.codec import DeadLetter, decode, encode_dead_letter, encode_output
from worker.errors import InvalidJsonError, NotARecordError, NotUtf8Error, OutputEncodeError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
records = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


@given(records)
def test_an_object_decodes_to_one_record_and_encodes_back_to_the_same_object(record):
    decoded = decode(orjson.dumps(record))
    assert decoded.records == [record]
    assert decoded.is_array is False
    assert orjson.loads(encode_output(decoded.records, decoded.is_array)) == record


@given(st.lists(records, max_size=6))
def test_an_array_of_objects_decodes_to_its_records_and_encodes_back_as_an_array(rows):
    decoded = decode(orjson.dumps(rows))
    assert decoded.records == rows
    assert decoded.is_array is True
    assert orjson.loads(encode_output(decoded.records, True)) == rows


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        (b"\xff\xfe{}", NotUtf8Error, "not valid UTF-8"),
        (b'{"a": "\xe9"}', NotUtf8Error, "at byte 7"),
        (b"{nope", InvalidJsonError, "not valid JSON"),
        (b"", InvalidJsonError, "not valid JSON"),
        (b"42", NotARecordError, "JSON number"),
        (b'"text"', NotARecordError, "JSON string"),
        (b"null", NotARecordError, "JSON null"),
        (b"true", NotARecordError, "JSON boolean"),
        (b'[{"a": 1}, [1]]', NotARecordError, "array item 1 is a JSON array"),
        (None, NotARecordError, "tombstone"),
    ],
)
def test_each_bad_input_kind_raises_its_own_decode_error(value, error, fragment):
    with pytest.raises(error, match=fragment):
        decode(value)


def test_numpy_values_are_encoded_natively():
    out = encode_output([{"score": np.float64(0.5), "v": np.arange(3)}], False)
    assert orjson.loads(out) == {"score": 0.5, "v": [0, 1, 2]}


def test_a_non_serializable_output_names_the_row_index_and_key():
    with pytest.raises(OutputEncodeError, match=r"output row 1 key 'bad': value of type object"):
        encode_output([{"ok": 1}, {"fine": 2, "bad": object()}], True)


def test_the_dead_letter_has_the_fixed_fields_and_the_original_bytes():
    letter = DeadLetter("ValueError", "boom", "execute", "in", 2, 41, 1700, b"\xff raw", 3)
    body = orjson.loads(encode_dead_letter(letter, worker_id="w-1", backend="B"))
    assert body["error"] == {
        "type": "ValueError",
        "message": "boom",
        "step": "execute",
        "record_index": 3,
    }
    assert body["source"] == {"topic": "in", "partition": 2, "offset": 41, "timestamp": 1700}
    assert base64.b64decode(body["value"]) == b"\xff raw"
    assert body["worker"] == "w-1"
    assert "value_omitted" not in body


def test_a_dead_letter_without_its_value_keeps_error_and_source_and_says_why():
    letter = DeadLetter("ValueError", "boom", "execute", "in", 2, 41, 1700, b"x" * 10, 3)
    full = orjson.loads(encode_dead_letter(letter, worker_id="w-1", backend="B"))
    bare = orjson.loads(encode_dead_letter(letter.without_value(), worker_id="w-1", backend="B"))
    assert bare["value"] is None
    assert bare["value_omitted"] == "original value of 10 bytes too large to republish"
    assert bare["error"] == full["error"]
    assert bare["source"] == full["source"]


def test_validate_accepts_exactly_what_the_worker_publishes() -> None:
    # One encoder for both (issue 9): numpy scalars and arrays pass validate() because the
    # worker publishes them; NaN becomes null; an integer beyond 64 bits still passes, as
    # packflow 0.4.x's json.dumps check let it.
    rows = [
        {"f": np.float32(2.5), "i": np.int64(7), "v": np.arange(3), "nan": float("nan")},
        {"big": 2**70},
    ]

    class Returning(InferenceBackend):
        def execute(self, inputs: Any) -> Any:
            return rows

    backend = Returning()
    assert backend.validate([{"a": 1}, {"a": 2}]) == rows
    assert [encode_output([row], False) for row in rows] == [
        b'{"f":2.5,"i":7,"v":[0,1,2],"nan":null}',
        b'{"big":1180591620717411303424}',
    ]
    with pytest.raises(OutputEncodeError):
        encode_output([{"x": object()}], False)

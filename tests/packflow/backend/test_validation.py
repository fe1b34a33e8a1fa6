"""validate()/check_io(): the input/output contract, with the failing row named."""

from __future__ import annotations

from typing import Any

import pytest

from packflow import InferenceBackend
from packflow.backend.validation import (
    InferenceBackendValidator,
    _input_is_correct_format,
    _inputs_and_outputs_match_len,
    _output_is_json_serializable,
    _output_is_list_of_dicts,
)
from packflow.exceptions import InferenceBackendRuntimeError, InferenceBackendValidationError
from packflow.testing import capture_logs


def backend_returning(fn: Any, **config: Any) -> InferenceBackend:
    cls = type("Custom", (InferenceBackend,), {"execute": lambda self, x: fn(x)})
    return cls(**config)  # type: ignore[no-any-return]


def test_valid_backend_returns_outputs_dict_for_dict() -> None:
    backend = backend_returning(lambda xs: [{"y": x["a"] * 2} for x in xs])
    assert backend.validate({"a": 2}) == {"y": 4}
    assert backend.check_io([{"a": 1}, {"a": 3}]) == [{"y": 2}, {"y": 6}]
    assert InferenceBackendValidator(backend).run([{"a": 0}]) == [{"y": 0}]


@pytest.mark.parametrize("bad", ["x", 3, None])
def test_input_must_be_records(bad: Any) -> None:
    with pytest.raises(InferenceBackendValidationError, match="list format"):
        _input_is_correct_format(bad)


def test_input_record_that_is_not_a_dict_is_named() -> None:
    backend = backend_returning(lambda xs: xs)
    with pytest.raises(InferenceBackendValidationError, match="index 1 is not a dictionary"):
        backend.validate([{"a": 1}, [2]])  # type: ignore[list-item]


def test_backend_failure_is_a_runtime_error_not_a_validation_error() -> None:
    def fail(xs: Any) -> Any:
        raise ValueError("model exploded")

    with pytest.raises(InferenceBackendRuntimeError, match="model exploded") as info:
        backend_returning(fail).validate([{"a": 1}])
    assert info.value.step == "execute"
    assert isinstance(info.value.__cause__, InferenceBackendRuntimeError)


def test_output_length_mismatch() -> None:
    backend = backend_returning(lambda xs: xs[:1])
    with pytest.raises(InferenceBackendValidationError, match="Received 2 inputs and returned 1"):
        backend.validate([{"a": 1}, {"a": 2}])


def test_output_rows_must_be_dicts_naming_the_row() -> None:
    backend = backend_returning(lambda xs: [{"ok": 1}, 5])
    with pytest.raises(InferenceBackendValidationError, match="index 1 is not a dictionary"):
        backend.validate([{"a": 1}, {"a": 2}])


def test_non_serializable_value_names_row_and_key() -> None:
    backend = backend_returning(lambda xs: [{"y": 1}, {"y": 2, "nested": {"arr": [1, object()]}}])
    with pytest.raises(InferenceBackendValidationError) as info:
        backend.validate([{"a": 1}, {"a": 2}])
    message = str(info.value)
    assert "Value at index 1 is not JSON Serializable" in message
    assert "key 'nested.arr.1' (object)" in message


def test_helpers_accept_valid_data() -> None:
    _input_is_correct_format([{"a": 1}])
    _inputs_and_outputs_match_len([1, 2], [3, 4])
    _output_is_list_of_dicts([{"a": 1}])
    _output_is_json_serializable([{"a": [1, "x", None, 1.5, {"b": True}]}])


def test_output_must_be_a_list() -> None:
    with pytest.raises(InferenceBackendValidationError, match="must be a Python list"):
        _output_is_list_of_dicts({"a": 1})


def test_declared_output_keys_missing_from_every_row_are_warned() -> None:
    backend = backend_returning(lambda xs: [{"y": 1} for _ in xs], output_keys=["y", "z"])
    with capture_logs() as logs:
        backend.validate([{"a": 1}])
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [(e["event"], e["key"]) for e in warnings] == [("declared_output_key_missing", "z")]

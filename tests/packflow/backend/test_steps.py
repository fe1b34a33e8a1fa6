"""The pipeline's steps: run in order, looked up at call time as in 0.4.x, errors name the step."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from packflow import InferenceBackend
from packflow.exceptions import InferenceBackendRuntimeError, PreprocessorRuntimeError
from tests.packflow.backend.test_base import Identity, Recorder


def test_steps_run_in_order_preprocess_transform_inputs_execute_transform_outputs() -> None:
    backend = Recorder(feature_names=["a"])
    out = backend([{"a": 1, "b": 2}])
    assert [name for name, _ in backend.calls] == [
        "transform_inputs",
        "execute",
        "transform_outputs",
    ]
    assert backend.calls[0][1] == [{"a": 1}]  # preprocess ran first (filtered "b")
    assert out == [{"to": {"ex": {"ti": {"a": 1}}}}]


def test_initialize_may_install_an_optional_step() -> None:
    class Late(InferenceBackend):
        def initialize(self) -> None:
            self.transform_outputs = lambda rows: [{"wrapped": r} for r in rows]

        def execute(self, inputs: Any) -> Any:
            return inputs

    backend = Late()
    assert backend([{"a": 1}]) == [{"wrapped": {"a": 1}}]
    assert backend.get_metrics().execution_times.transform_outputs is not None


@pytest.mark.parametrize("step", ["transform_inputs", "execute", "transform_outputs"])
def test_a_failing_step_is_named_and_chained(step: str) -> None:
    def boom(self: Any, data: Any) -> Any:
        raise ValueError("boom")

    cls = type("Failing", (Recorder,), {step: boom})
    backend = cls()
    with pytest.raises(InferenceBackendRuntimeError) as info:
        backend([{"a": 1}])
    err = info.value
    assert err.step == step
    assert f"{step}() failed with the following error: boom" in str(err)
    assert "Failing" in str(err)
    assert isinstance(err.__cause__, ValueError)


def test_a_failing_preprocess_is_named_with_the_record_index() -> None:
    backend = Identity(input_format="numpy", feature_names=["x"], numpy_dtype="float32")
    with pytest.raises(InferenceBackendRuntimeError) as info:
        backend([{"x": 1}, {"x": "nope"}])
    assert info.value.step == "preprocess"
    assert info.value.record_index == 1
    assert isinstance(info.value.__cause__, PreprocessorRuntimeError)
    assert "record 1" in str(info.value)


def test_output_that_is_not_a_list_raises() -> None:
    class Scalar(InferenceBackend):
        def execute(self, inputs: Any) -> Any:
            return {"not": "a list"}

    with pytest.raises(InferenceBackendRuntimeError, match=r"not a list.*dict") as info:
        Scalar()([{"a": 1}])
    assert info.value.step is None


class Doubler(InferenceBackend):
    def execute(self, inputs: Any) -> Any:
        return [{"y": r["x"] * 2} for r in inputs]


def test_patching_the_class_step_takes_effect_on_an_existing_backend() -> None:
    backend = Doubler()
    assert backend({"x": 1}) == {"y": 2}
    with mock.patch.object(
        Doubler, "transform_outputs", lambda self, rows: [{**r, "p": 1} for r in rows], create=True
    ):
        assert backend({"x": 1}) == {"y": 2, "p": 1}
        assert backend.get_metrics().execution_times.transform_outputs is not None
    assert backend({"x": 1}) == {"y": 2}
    assert backend.get_metrics().execution_times.transform_outputs is None


def test_patching_execute_on_the_class_with_a_mock_is_called() -> None:
    backend = Doubler()
    with mock.patch.object(Doubler, "execute", return_value=[{"mocked": True}]) as patched:
        assert backend({"x": 1}) == {"mocked": True}
    patched.assert_called_once_with([{"x": 1}])


def test_an_instance_attribute_step_and_a_late_added_step_are_used() -> None:
    backend = Doubler()
    backend.transform_inputs = lambda records: [{"x": r["x"] + 1} for r in records]
    assert backend({"x": 1}) == {"y": 4}
    del backend.transform_inputs
    assert backend({"x": 1}) == {"y": 2}

    class Late(Doubler):
        pass

    late = Late()
    assert late({"x": 1}) == {"y": 2}
    Late.transform_inputs = lambda self, records: [{"x": 10} for _ in records]  # type: ignore[attr-defined]
    assert late({"x": 1}) == {"y": 20}


def test_patching_preprocess_or_replacing_the_preprocessor_takes_effect() -> None:
    backend = Doubler(feature_names=["x"])
    with mock.patch.object(Doubler, "_preprocess", return_value=[{"x": 5}]) as patched:
        assert backend({"x": 1, "z": 0}) == {"y": 10}
    patched.assert_called_once()
    assert backend({"x": 1, "z": 0}) == {"y": 2}

    class Plus100:
        passthrough = False

        def process(self, records: Any) -> Any:
            return [{"x": r["x"] + 100} for r in records]

    backend._preprocessor = Plus100()  # type: ignore[assignment]
    assert backend({"x": 1}) == {"y": 202}


def test_a_step_set_in_initialize_is_used() -> None:
    class SetsStep(Doubler):
        def initialize(self) -> None:
            self.transform_outputs = lambda rows: [{"z": r["y"]} for r in rows]

    assert SetsStep()({"x": 2}) == {"z": 4}


def test_a_step_failing_on_an_object_array_with_none_names_the_records_and_fields() -> None:
    class Mean(InferenceBackend):
        def execute(self, inputs: Any) -> Any:
            return [{"m": float(v) / 2} for v in inputs.sum(axis=1)]

    backend = Mean(input_format="numpy", feature_names=["a", "b.c"])
    assert backend([{"a": 1, "b": {"c": 3}}]) == [{"m": 2.0}]
    with pytest.raises(InferenceBackendRuntimeError) as info:
        backend([{"a": 1, "b": {"c": 3}}, {"a": None, "b": {}}, {"a": 2}])
    message = str(info.value)
    assert info.value.step == "execute"
    assert "missing or None: record 1 field 'a', record 1 field 'b.c', record 2 field 'b.c'" in (
        message
    )
    assert "numpy_dtype" in message


def test_a_step_failing_on_a_numeric_array_gets_no_none_hint() -> None:
    class Boom(InferenceBackend):
        def execute(self, inputs: Any) -> Any:
            raise ValueError("bad")

    with pytest.raises(InferenceBackendRuntimeError) as info:
        Boom(input_format="numpy", feature_names=["a"])([{"a": 1}])
    assert "missing or None" not in str(info.value)

"""InferenceBackend: lifecycle, dict/list I/O, input checks, metrics, verbose, config, run()."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest
from pydantic import ValidationError

from packflow import BackendConfig, InferenceBackend, RunResult
from packflow.backend.metrics import ExecutionMetrics
from packflow.exceptions import InferenceBackendInitializationError, InferenceBackendRuntimeError
from packflow.testing import capture_logs


class Identity(InferenceBackend):
    def execute(self, inputs: Any) -> Any:
        return inputs


class Recorder(InferenceBackend):
    """Records the order of the steps and what each one received."""

    def initialize(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def transform_inputs(self, inputs: Any) -> Any:
        self.calls.append(("transform_inputs", inputs))
        return [{"ti": r} for r in inputs]

    def execute(self, inputs: Any) -> Any:
        self.calls.append(("execute", inputs))
        return [{"ex": r} for r in inputs]

    def transform_outputs(self, outputs: Any) -> Any:
        self.calls.append(("transform_outputs", outputs))
        return [{"to": r} for r in outputs]


def test_execute_is_the_only_abstract_method() -> None:
    with pytest.raises(TypeError, match="execute"):
        InferenceBackend()  # type: ignore[abstract]
    assert not hasattr(InferenceBackend, "transform_inputs")
    assert not hasattr(InferenceBackend, "transform_outputs")


def test_dict_input_returns_a_dict_and_list_input_a_list() -> None:
    backend = Identity()
    assert backend({"a": 1}) == {"a": 1}
    assert backend([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    assert backend([]) == []


def test_no_preprocessing_options_returns_the_callers_own_records() -> None:
    records = [{"a": {"b": 1}}, {"a": {"b": 2}}]
    out = Identity()(records)
    assert out is records
    assert all(out[i] is records[i] for i in range(len(records)))


@pytest.mark.parametrize("bad", [None, 3, "x", ("a",), {1, 2}])
def test_input_that_is_not_a_record_or_records_raises(bad: Any) -> None:
    with pytest.raises(InferenceBackendRuntimeError, match="Type received") as info:
        Identity()(bad)
    assert info.value.step is None


def test_record_that_is_not_a_dict_is_named_by_index() -> None:
    with pytest.raises(InferenceBackendRuntimeError, match="record 2 is an int") as info:
        Identity()([{"a": 1}, {"a": 2}, 7])
    assert info.value.record_index == 2
    assert info.value.step is None
    with pytest.raises(InferenceBackendRuntimeError, match="record 0 is a list"):
        Identity()([[1]])


def test_dict_subclass_records_are_accepted() -> None:
    class Row(dict):  # type: ignore[type-arg]
        pass

    rows = [Row(a=1), {"a": 2}]
    assert Identity()(rows) == [{"a": 1}, {"a": 2}]


def test_dict_input_with_empty_output_is_a_clear_error_not_an_index_error() -> None:
    class Empty(InferenceBackend):
        def execute(self, inputs: Any) -> Any:
            return []

    with pytest.raises(InferenceBackendRuntimeError, match="empty list for a single record"):
        Empty()({"a": 1})


def test_failing_initialize_raises_initialization_error_chained() -> None:
    class Broken(InferenceBackend):
        def initialize(self) -> None:
            raise OSError("model file missing")

        def execute(self, inputs: Any) -> Any:
            return inputs

    with pytest.raises(InferenceBackendInitializationError, match="model file missing") as info:
        Broken()
    assert isinstance(info.value.__cause__, OSError)


def test_initialize_is_timed_in_milliseconds_and_logged() -> None:
    class Slowish(InferenceBackend):
        def initialize(self) -> None:
            total = 0
            for i in range(200_000):
                total += i
            self.total = total

        def execute(self, inputs: Any) -> Any:
            return inputs

    with capture_logs() as logs:
        backend = Slowish()
    events = [e for e in logs if e["event"] == "backend_initialized"]
    assert len(events) == 1
    assert events[0]["log_level"] == "info"
    assert events[0]["backend"] == "Slowish"
    # 200k additions take well over a microsecond: a seconds value would be ~0.00x here.
    assert backend.init_time_ms > 0.1
    assert events[0]["init_time_ms"] == round(backend.init_time_ms, 3)


def test_ready_is_true_by_default_and_overridable() -> None:
    class NotReady(Identity):
        def ready(self) -> bool:
            return False

    assert Identity().ready() is True
    assert NotReady().ready() is False


def test_get_metrics_reports_every_step_that_ran_in_ms() -> None:
    backend = Recorder()
    backend([{"a": 1}, {"a": 2}, {"a": 3}])
    metrics = backend.get_metrics()
    assert isinstance(metrics, ExecutionMetrics)
    assert metrics.batch_size == 3
    times = metrics.execution_times
    steps = [times.preprocess, times.transform_inputs, times.execute, times.transform_outputs]
    assert all(t is not None and t >= 0 for t in steps)
    assert metrics.total_execution_time == pytest.approx(sum(t for t in steps if t is not None))


def test_get_metrics_leaves_undefined_steps_unset() -> None:
    backend = Identity()
    backend({"a": 1})
    metrics = backend.get_metrics()
    assert metrics.batch_size == 1
    assert metrics.execution_times.transform_inputs is None
    assert metrics.execution_times.transform_outputs is None
    assert set(backend._execution_metrics["execution_times"]) == {"preprocess", "execute"}


def test_get_metrics_before_any_call_is_a_clear_error() -> None:
    backend = Identity()
    assert backend._execution_metrics == {"execution_times": {}}
    with pytest.raises(InferenceBackendRuntimeError, match="no call has completed"):
        backend.get_metrics()
    backend({"a": 1})
    assert backend.get_metrics().batch_size == 1


def test_execute_and_profile_step_times_and_wraps_like_0_4() -> None:
    backend = Identity()
    assert backend._execute_and_profile_step(backend.execute, [1]) == [1]
    assert "execute" in backend._execution_metrics["execution_times"]

    def _transform_inputs(data: Any) -> Any:
        raise KeyError("k")

    with pytest.raises(InferenceBackendRuntimeError, match=r"transform_inputs\(\) failed") as info:
        backend._execute_and_profile_step(_transform_inputs, [1])
    assert info.value.step == "transform_inputs"


def test_verbose_logs_one_structured_debug_line_per_call_as_0_4() -> None:
    backend = Identity(verbose=True)
    with capture_logs() as logs:
        backend([{"a": 1}, {"a": 2}])
        backend({"a": 3})
    calls = [e for e in logs if e["event"] == "backend_call"]
    assert len(calls) == 2
    assert all(e["log_level"] == "debug" for e in calls)
    assert calls[0]["batch_size"] == 2
    assert calls[0]["backend"] == "Identity"
    assert set(calls[0]["execution_times_ms"]) == {"preprocess", "execute"}
    assert calls[0]["total_execution_time_ms"] == pytest.approx(
        sum(calls[0]["execution_times_ms"].values())
    )


def test_not_verbose_logs_nothing_per_call() -> None:
    backend = Identity()
    with capture_logs() as logs:
        backend([{"a": 1}])
    assert logs == []


def test_subclassed_config_is_used_and_required_fields_are_enforced() -> None:
    class Config(BackendConfig):
        threshold: float
        labels: list[str] = ["a"]

    class Thresholded(InferenceBackend):
        backend_config_model = Config

        def execute(self, inputs: Any) -> Any:
            return [{"hit": r["x"] > self.config.threshold} for r in inputs]  # type: ignore[attr-defined]

    backend = Thresholded(threshold=0.5)
    assert isinstance(backend.config, Config)
    assert backend([{"x": 0.7}, {"x": 0.1}]) == [{"hit": True}, {"hit": False}]
    with pytest.raises(ValidationError, match="threshold"):
        Thresholded()


def test_config_instance_as_model_provides_defaults_below_kwargs() -> None:
    class Tuned(Identity):
        backend_config_model = BackendConfig(feature_names=["a"], verbose=True)

    assert Tuned().config.feature_names == ["a"]
    assert Tuned().config.verbose is True
    assert Tuned(feature_names=["b"]).config.feature_names == ["b"]


def test_validate_and_check_io_are_the_same_check() -> None:
    backend = Identity()
    assert backend.validate({"a": 1}) == {"a": 1}
    assert backend.check_io([{"a": 1}]) == [{"a": 1}]


# -- run(): the worker's entry point -----------------------------------------------------------


def test_run_returns_outputs_and_this_calls_metrics() -> None:
    backend = Recorder()
    result = backend.run([{"a": 1}, {"a": 2}])
    assert isinstance(result, RunResult)
    assert result.outputs == [{"to": {"ex": {"ti": {"a": 1}}}}, {"to": {"ex": {"ti": {"a": 2}}}}]
    assert result.metrics.batch_size == 2
    times = result.metrics.execution_times
    assert None not in (times.preprocess, times.transform_inputs, times.execute)
    assert times.transform_outputs is not None
    assert result.metrics.total_execution_time == pytest.approx(times.total())
    # run() leaves the backend's own last-call metrics alone
    assert backend._execution_metrics == {"execution_times": {}}


def test_run_result_is_frozen_with_slots() -> None:
    result = Identity().run([{"a": 1}])
    with pytest.raises(AttributeError):
        result.outputs = []  # type: ignore[misc]
    assert not hasattr(result, "__dict__")


def test_run_does_not_wrap_a_dict_and_rejects_non_records() -> None:
    backend = Identity()
    with pytest.raises(InferenceBackendRuntimeError, match="list of dicts") as info:
        backend.run({"a": 1})  # type: ignore[arg-type]
    assert info.value.step is None
    with pytest.raises(InferenceBackendRuntimeError) as info:
        backend.run([{"a": 1}, "x"])  # type: ignore[list-item]
    assert info.value.record_index == 1
    assert info.value.step is None


def test_run_wraps_step_errors_with_the_step_name() -> None:
    class Fails(InferenceBackend):
        def execute(self, inputs: Any) -> Any:
            raise ZeroDivisionError("x")

    with pytest.raises(InferenceBackendRuntimeError) as info:
        Fails().run([{"a": 1}])
    assert info.value.step == "execute"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_run_rejects_a_non_list_output_but_not_a_length_mismatch() -> None:
    class Short(InferenceBackend):
        def execute(self, inputs: Any) -> Any:
            return inputs[:1]

    class NotList(InferenceBackend):
        def execute(self, inputs: Any) -> Any:
            return "x"

    assert Short().run([{"a": 1}, {"a": 2}]).outputs == [{"a": 1}]
    with pytest.raises(InferenceBackendRuntimeError, match="not a list") as info:
        NotList().run([{"a": 1}])
    assert info.value.step is None


def test_run_is_safe_from_many_threads_at_once() -> None:
    class Echo(InferenceBackend):
        def transform_inputs(self, inputs: Any) -> Any:
            return [r["n"] for r in inputs]

        def execute(self, inputs: Any) -> Any:
            return [{"n": n, "sq": n * n} for n in inputs]

    backend = Echo(feature_names=["n"])
    barrier = threading.Barrier(8)
    failures: list[str] = []

    def worker(offset: int) -> None:
        barrier.wait(timeout=30)
        for i in range(300):
            size = 1 + (offset + i) % 7
            batch = [{"n": offset * 10_000 + i * 10 + k, "junk": k} for k in range(size)]
            result = backend.run(batch)
            expected = [{"n": r["n"], "sq": r["n"] ** 2} for r in batch]
            if result.outputs != expected or result.metrics.batch_size != size:
                failures.append(f"thread {offset} iteration {i}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert failures == []


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"feature_names": ["a.b", "c"], "rename_fields": {"x": "c"}},
        {"flatten_nested_inputs": True, "feature_names": ["a.b"]},
        {"input_format": "passthrough"},
    ],
)
def test_backend_survives_pickling_with_its_compiled_preprocessor(config: dict[str, Any]) -> None:
    backend = Identity(**config)
    records = [{"a": {"b": 1}, "x": 2, "c": 3}]
    clone = pickle.loads(pickle.dumps(backend))
    assert clone(records) == backend(records)
    assert clone.config == backend.config


def test_a_backend_may_use_common_private_attribute_names() -> None:
    class Stateful(InferenceBackend):
        def initialize(self) -> None:
            self._state = {"calls": 0}
            self._steps = "mine"
            self._last_call = None

        def execute(self, inputs: Any) -> Any:
            self._state["calls"] += 1
            return inputs

    backend = Stateful()
    assert backend({"a": 1}) == {"a": 1}
    assert backend._state == {"calls": 1}
    assert backend.get_metrics().batch_size == 1

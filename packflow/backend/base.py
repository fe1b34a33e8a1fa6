"""``InferenceBackend``: the base class model authors subclass, and its ``RunResult``."""

from __future__ import annotations

from abc import ABC, ABCMeta, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, ClassVar

from packflow.backend._preprocessor_base import wrapped_error
from packflow.backend.configuration import BackendConfig, load_backend_configuration
from packflow.backend.metrics import STEP_NAMES, ExecutionMetrics, _build_metrics
from packflow.backend.preprocessors import Preprocessor, get_preprocessor
from packflow.backend.validation import InferenceBackendValidator
from packflow.exceptions import (
    InferenceBackendInitializationError,
    InferenceBackendRuntimeError,
    PreprocessorRuntimeError,
)
from packflow.logger import logger as _sdk_logger
from packflow.utils._grammar import with_article

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["InferenceBackend", "RunResult"]

# (batch_size, preprocess, transform_inputs, execute, transform_outputs); times in ns,
# None for a step that did not run.
_CallTimes = tuple[int | None, int | None, int | None, int | None, int | None]
_NO_CALL: _CallTimes = (None, None, None, None, None)
_DICT_ONLY = frozenset({dict})
_SLOT = {name: slot for slot, name in enumerate(STEP_NAMES, start=1)}


# -- steps looked up at call time, for free ---------------------------------------------------
#
# packflow 0.4.x looks every step up on every call (``hasattr(self, "transform_inputs")``),
# so ``mock.patch.object``, instance attributes and steps added later take effect. Doing the
# lookups per call costs ~150 ns on a ~700 ns one-record call; instead the resolved steps are
# cached per backend together with ``_steps_epoch``, and every way of changing a step (setting
# or deleting one of ``_STEP_ATTRS`` on a backend class or instance) bumps the epoch, so the
# next call of any backend resolves its steps again. A call pays one comparison.
_STEP_ATTRS = frozenset(
    {"_preprocess", "_preprocessor", "transform_inputs", "execute", "transform_outputs"}
)
_steps_epoch = 0

# (epoch, preprocess or None when the input passes through, transform_inputs or None,
#  transform_outputs or None)
_Steps = tuple[
    int, Callable[[Any], Any] | None, Callable[[Any], Any] | None, Callable[[Any], Any] | None
]
_NO_STEPS: _Steps = (-1, None, None, None)


def _steps_changed() -> None:
    global _steps_epoch
    _steps_epoch += 1


class _BackendMeta(ABCMeta):
    """``ABCMeta`` that notices when a backend class's pipeline step is set or deleted."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _STEP_ATTRS:
            _steps_changed()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        if name in _STEP_ATTRS:
            _steps_changed()


@dataclass(frozen=True, slots=True)
class RunResult:
    """What :meth:`InferenceBackend.run` returns.

    Attributes:
        outputs: the list the last pipeline step returned (not checked for length).
        metrics: batch size and milliseconds per step that ran, with their total.
    """

    outputs: list[Any]
    metrics: ExecutionMetrics


def _execution_times_ms(times: _CallTimes) -> dict[str, float]:
    """Milliseconds per step that ran."""
    return {
        name: ns / 1e6 for name, ns in zip(STEP_NAMES, times[1:], strict=True) if ns is not None
    }


def _metrics_dict(times: _CallTimes) -> dict[str, Any]:
    metrics: dict[str, Any] = {"execution_times": _execution_times_ms(times)}
    if times[0] is not None:
        metrics["batch_size"] = times[0]
    return metrics


def _check_records(records: list[Any]) -> None:
    """Raise ``InferenceBackendRuntimeError`` naming the first record that is not a dict."""
    if set(map(type, records)) <= _DICT_ONLY:
        return
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InferenceBackendRuntimeError(
                f"Inputs must be records (a list of dicts): record {index} is "
                f"{with_article(type(record).__name__)}, not a dict",
                record_index=index,
            )


class InferenceBackend(ABC, metaclass=_BackendMeta):
    """Base class of inference backends: subclass it and implement :meth:`execute`.

    Optionally define ``initialize()`` (run once, timed, at construction),
    ``transform_inputs(data)``, ``transform_outputs(data)`` and ``ready()``. Do not override
    ``__init__``: configure the backend with a ``BackendConfig`` subclass named in
    ``backend_config_model`` and keyword arguments.

    A call ``backend(inputs)`` takes one record (a dict, answered with a dict) or records (a
    list of dicts, answered with a list) and runs::

        preprocess -> transform_inputs (if defined) -> execute -> transform_outputs (if defined)

    timing every step (see :meth:`get_metrics`). A step that raises is reported as
    ``InferenceBackendRuntimeError`` with ``.step`` set to its name and the original
    exception chained as ``__cause__``.

    Every step (``_preprocess``, ``transform_inputs``, ``execute``, ``transform_outputs``) is
    looked up at call time, as in 0.4.x: ``mock.patch.object`` on the class or the instance,
    instance attributes and steps added after construction take effect on the next call
    (a change made on a non-backend mixin class is not seen). Runtimes that call from several
    threads use :meth:`run`.
    """

    backend_config_model: ClassVar[type[BackendConfig] | BackendConfig] = BackendConfig

    config: BackendConfig
    logger: Logger
    init_time_ms: float

    def __init__(self, **kwargs: Any) -> None:
        self.logger = _sdk_logger.bind(backend=type(self).__name__)
        self.config = load_backend_configuration(self.backend_config_model, **kwargs)
        self._preprocessor: Preprocessor = get_preprocessor(self.config)
        # [last call's times, resolved steps]: written in place on the hot path (no
        # __setattr__ hook, and no __dict__ access that would slow every attribute load).
        self._packflow_state: list[Any] = [_NO_CALL, _NO_STEPS]
        self._initialize()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def __getstate__(self) -> dict[str, Any]:
        # loguru's logger pickles its handlers (stderr cannot be pickled): bind it again on
        # the other side instead.
        state = dict(self.__dict__)
        # The resolved steps are bound methods: resolve them again after loading.
        state["_packflow_state"] = [self._packflow_state[0], _NO_STEPS]
        if isinstance(state.get("logger"), type(_sdk_logger)):
            del state["logger"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "logger" not in state:
            self.logger = _sdk_logger.bind(backend=type(self).__name__)

    # -- lifecycle ---------------------------------------------------------------------------

    def initialize(self) -> None:
        """Load models or other resources; runs once, timed, at the end of ``__init__``.

        Any exception becomes ``InferenceBackendInitializationError`` (chained).
        """

    def ready(self) -> bool:
        """Whether the backend can take traffic; packflow itself never calls it.

        Outside systems (the worker's readiness probe) ask it. ``True`` by default.
        """
        return True

    @abstractmethod
    def execute(self, inputs: Any) -> Any:
        """Run the model on the (preprocessed, transformed) inputs of one batch.

        Keep pre- and post-processing in ``transform_inputs``/``transform_outputs`` so each
        is timed on its own. The pipeline's final output must be a list with one row
        (ideally a JSON-serializable dict) per input record.
        """

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _STEP_ATTRS:
            _steps_changed()

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        if name in _STEP_ATTRS:
            _steps_changed()

    def _bind_steps(self) -> _Steps:
        """Resolve the pipeline's optional callables as they are now (see ``_STEP_ATTRS``)."""
        preprocess: Callable[[Any], Any] | None
        if getattr(self._preprocess, "__func__", None) is _base_preprocess:
            preprocessor = self._preprocessor
            # None: the preprocessor returns its input itself: not called (still timed).
            preprocess = None if preprocessor.passthrough else preprocessor.process
        else:  # a replaced _preprocess: call it, as 0.4.x does
            preprocess = self._preprocess
        steps: _Steps = (
            _steps_epoch,
            preprocess,
            getattr(self, "transform_inputs", None),
            getattr(self, "transform_outputs", None),
        )
        self._packflow_state[1] = steps
        return steps

    def _initialize(self) -> None:
        start = perf_counter_ns()
        try:
            self.initialize()
        except Exception as exc:
            raise InferenceBackendInitializationError(
                f"initialize() of {type(self).__name__} failed: {type(exc).__name__}: {exc}"
            ) from exc
        self.init_time_ms = (perf_counter_ns() - start) / 1e6
        self.logger.info(
            "Initialized {} in {init_time_ms:,.3f} ms",
            type(self).__name__,
            event="backend_initialized",
            init_time_ms=round(self.init_time_ms, 3),
        )

    # -- calls -------------------------------------------------------------------------------

    def __call__(self, inputs: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Run the pipeline on one record (dict -> dict) or records (list -> list).

        Raises:
            InferenceBackendRuntimeError: the input is not a dict or a list of dicts
                (``record_index`` names the bad record), a step raised (``step`` names it),
                the final output is not a list, or a dict input produced no output row.
        """
        if isinstance(inputs, dict):
            records = [inputs]
        elif isinstance(inputs, list):
            records = inputs
            if len(records) != 1 or not isinstance(records[0], dict):
                _check_records(records)
        else:
            raise InferenceBackendRuntimeError(
                "Inputs must be a dictionary or Records (a list of dictionaries). "
                f"Type received: {type(inputs).__name__}"
            )
        outputs, times = self._run_pipeline(records)
        self._packflow_state[0] = times
        if self.config.verbose:
            self._log_call(times)
        if records is inputs:
            return outputs
        if not outputs:
            raise InferenceBackendRuntimeError(
                f"{type(self).__name__} returned an empty list for a single record; "
                "expected one output row"
            )
        return outputs[0]

    def run(self, records: list[dict[str, Any]]) -> RunResult:
        """Run the pipeline on a batch of records; safe to call from several threads at once.

        This is the entry point for runtimes (the Kafka worker). It runs the same steps as
        ``backend(records)`` -- ``preprocess`` -> ``transform_inputs`` (if defined) ->
        ``execute`` -> ``transform_outputs`` (if defined) -- and returns the final output
        together with the call's own metrics instead of storing them on the backend, so
        concurrent calls never see each other's state (``get_metrics()`` is not updated).

        It takes records only (a single dict is not wrapped) and does not check that the
        output has one row per record: the caller decides what a length mismatch means.

        Args:
            records: the batch, a list of dicts.

        Returns:
            ``RunResult(outputs, metrics)``: ``outputs`` is the list returned by the last
            step; ``metrics.execution_times`` holds milliseconds per step that ran.

        Raises:
            InferenceBackendRuntimeError: ``records`` is not a list (``step=None``), a record
                is not a dict (``step=None``, ``record_index`` set), a step raised (``step``
                names it, the original exception is ``__cause__``, and ``record_index`` is
                set when the preprocessor could pin the failure to a record), or the final
                output is not a list (``step=None``).
        """
        if not isinstance(records, list):
            raise InferenceBackendRuntimeError(
                f"run() takes records (a list of dicts); got {type(records).__name__}"
            )
        _check_records(records)
        outputs, times = self._run_pipeline(records)
        return RunResult(outputs, _build_metrics(len(records), _execution_times_ms(times)))

    def _run_pipeline(self, records: list[dict[str, Any]]) -> tuple[list[Any], _CallTimes]:
        """Run the steps on checked records; return the final output and the step times."""
        clock = perf_counter_ns
        steps = self._packflow_state[1]
        if steps[0] != _steps_epoch:
            steps = self._bind_steps()
        _epoch, preprocess, transform_inputs, transform_outputs = steps
        t0 = clock()
        if preprocess is None:
            data = records
        else:
            try:
                data = preprocess(records)
            except Exception as exc:
                raise self._preprocess_failed(exc) from exc
        t1 = clock()
        if transform_inputs is None:
            transform_inputs_ns = None
            t2 = t1
        else:
            try:
                data = transform_inputs(data)
            except Exception as exc:
                raise self._step_failed("transform_inputs", exc, data) from exc
            t2 = clock()
            transform_inputs_ns = t2 - t1
        try:
            outputs = self.execute(data)
        except Exception as exc:
            raise self._step_failed("execute", exc, data) from exc
        t3 = clock()
        if transform_outputs is None:
            transform_outputs_ns = None
        else:
            try:
                outputs = transform_outputs(outputs)
            except Exception as exc:
                raise self._step_failed("transform_outputs", exc) from exc
            transform_outputs_ns = clock() - t3
        if not isinstance(outputs, list):
            raise self._not_a_list(outputs)
        return outputs, (len(records), t1 - t0, transform_inputs_ns, t3 - t2, transform_outputs_ns)

    def _not_a_list(self, outputs: Any) -> InferenceBackendRuntimeError:
        return InferenceBackendRuntimeError(
            f"Output of inference backend {type(self).__name__} is not a list. "
            f"Received type: {type(outputs).__name__}"
        )

    def _step_failed(
        self, step: str, exc: Exception, step_input: Any = None
    ) -> InferenceBackendRuntimeError:
        hint = None if step_input is None else self._preprocessor.failure_hint(step_input)
        return InferenceBackendRuntimeError(
            f"{step}() failed with the following error: {exc} "
            f"({type(exc).__name__} in step '{step}' of {type(self).__name__})"
            + (f"; {hint}" if hint else ""),
            step=step,
            record_index=getattr(exc, "record_index", None),
        )

    def _preprocess_failed(self, exc: Exception) -> InferenceBackendRuntimeError:
        if not isinstance(exc, PreprocessorRuntimeError):
            wrapped = wrapped_error(exc)
            wrapped.__cause__ = exc
            exc = wrapped
        return self._step_failed("preprocess", exc)

    def _log_call(self, times: _CallTimes) -> None:
        # DEBUG, as packflow 0.4.x: hidden at the default PACKFLOW_LOG_LEVEL (INFO).
        execution_times = _execution_times_ms(times)
        self.logger.debug(
            "backend_call batch_size={batch_size} execution_times_ms={execution_times_ms} "
            "total_execution_time_ms={total_execution_time_ms}",
            event="backend_call",
            batch_size=times[0],
            execution_times_ms=execution_times,
            total_execution_time_ms=sum(execution_times.values()),
        )

    # -- 0.4.x compatible helpers ------------------------------------------------------------

    def _preprocess(self, raw_inputs: list[dict[str, Any]]) -> Any:
        """Run the configured preprocessor (the pipeline's ``preprocess`` step)."""
        return self._preprocessor(raw_inputs)

    def _execute_and_profile_step(self, method: Callable[[Any], Any], data: Any) -> Any:
        """Run one step, timing it into the metrics and wrapping its errors.

        The step name is ``method.__name__`` without leading/trailing underscores.
        """
        name = method.__name__.strip("_")
        start = perf_counter_ns()
        try:
            result = method(data)
        except Exception as exc:
            raise self._step_failed(name, exc) from exc
        elapsed = perf_counter_ns() - start
        slot = _SLOT.get(name)
        if slot is not None:
            times = list(self._packflow_state[0])
            times[slot] = elapsed
            self._packflow_state[0] = tuple(times)
        return result

    @property
    def _execution_metrics(self) -> dict[str, Any]:
        """The last call's metrics as a dict (``batch_size``, ``execution_times`` in ms)."""
        return _metrics_dict(self._packflow_state[0])

    def get_metrics(self) -> ExecutionMetrics:
        """Metrics of the last completed ``backend(inputs)`` call (built on demand).

        Raises:
            InferenceBackendRuntimeError: no call has completed yet (packflow 0.4.x raised a
                bare pydantic ``ValidationError`` about missing fields here).
        """
        if self._packflow_state[0][0] is None:
            raise InferenceBackendRuntimeError(
                f"get_metrics() of {type(self).__name__}: no metrics yet, no call has "
                "completed; call the backend first (backend(records)); runtimes calling "
                "run() get each call's metrics in its RunResult"
            )
        return ExecutionMetrics.model_validate(self._execution_metrics)

    # -- validation --------------------------------------------------------------------------

    def check_io(self, inputs: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Run ``inputs`` through the backend and check the input/output contract.

        Checks: the input is records; the output is a list of dicts, one per input record,
        each JSON-serializable. Returns the outputs (a dict for a dict input).

        Raises:
            InferenceBackendValidationError: a contract violation (the row index is named).
            InferenceBackendRuntimeError: the backend itself failed.
        """
        return InferenceBackendValidator(self).run(inputs)

    def validate(self, inputs: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Alias of :meth:`check_io` (the packflow 0.4.0 name)."""
        return self.check_io(inputs)


_base_preprocess = InferenceBackend._preprocess

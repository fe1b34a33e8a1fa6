"""``InferenceBackend``: the base class model authors subclass, and its ``RunResult``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, ClassVar

from packflow.backend._steps import (
    NO_STEPS,
    STEP_ATTRS,
    BackendMeta,
    Steps,
    bind_steps,
    run_steps,
    step_failed,
    steps_changed,
)
from packflow.backend.configuration import BackendConfig, load_backend_configuration
from packflow.backend.metrics import (
    NO_CALL,
    STEP_SLOTS,
    CallTimes,
    ExecutionMetrics,
    _build_metrics,
    _execution_times_ms,
    _metrics_dict,
)
from packflow.backend.preprocessors import Preprocessor, get_preprocessor
from packflow.backend.validation import InferenceBackendValidator
from packflow.exceptions import InferenceBackendInitializationError, InferenceBackendRuntimeError
from packflow.logger import logger as _sdk_logger
from packflow.utils._grammar import with_article

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["InferenceBackend", "RunResult"]

_DICT_ONLY = frozenset({dict})


@dataclass(frozen=True, slots=True)
class RunResult:
    """What :meth:`InferenceBackend.run` returns.

    Attributes:
        outputs: the list the last pipeline step returned (not checked for length).
        metrics: batch size and milliseconds per step that ran, with their total.
    """

    outputs: list[Any]
    metrics: ExecutionMetrics


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


class InferenceBackend(ABC, metaclass=BackendMeta):
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
        self._packflow_state: list[Any] = [NO_CALL, NO_STEPS]
        self._initialize()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def __getstate__(self) -> dict[str, Any]:
        # loguru's logger pickles its handlers (stderr cannot be pickled): bind it again on
        # the other side instead.
        state = dict(self.__dict__)
        # The resolved steps are bound methods: resolve them again after loading.
        state["_packflow_state"] = [self._packflow_state[0], NO_STEPS]
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
        if name in STEP_ATTRS:
            steps_changed()

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        if name in STEP_ATTRS:
            steps_changed()

    def _bind_steps(self) -> Steps:
        """Resolve the pipeline's optional callables as they are now (see ``_steps``)."""
        preprocess: Callable[[Any], Any] | None
        if getattr(self._preprocess, "__func__", None) is _base_preprocess:
            preprocessor = self._preprocessor
            # None: the preprocessor returns its input itself: not called (still timed).
            preprocess = None if preprocessor.passthrough else preprocessor.process
        else:  # a replaced _preprocess: call it, as 0.4.x does
            preprocess = self._preprocess
        return bind_steps(self, preprocess)

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
        outputs, times = run_steps(self, records)
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
        outputs, times = run_steps(self, records)
        return RunResult(outputs, _build_metrics(len(records), _execution_times_ms(times)))

    def _log_call(self, times: CallTimes) -> None:
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
            raise step_failed(self, name, exc) from exc
        elapsed = perf_counter_ns() - start
        slot = STEP_SLOTS.get(name)
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

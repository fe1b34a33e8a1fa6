"""The pipeline's steps: looked up at call time, run in order, timed; a failing step's error.

packflow 0.4.x looks every step up on every call (``hasattr(self, "transform_inputs")``),
so ``mock.patch.object``, instance attributes and steps added later take effect. Doing the
lookups per call costs ~150 ns on a ~700 ns one-record call; instead the resolved steps are
cached per backend together with the epoch they were resolved in, and every way of changing
a step (setting or deleting one of :data:`STEP_ATTRS` on a backend class or instance) bumps
the epoch (:func:`steps_changed`), so the next call of any backend resolves its steps again.
A call pays one comparison.
"""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from packflow.backend._preprocessor_base import wrapped_error
from packflow.backend.metrics import CallTimes
from packflow.exceptions import InferenceBackendRuntimeError, PreprocessorRuntimeError

if TYPE_CHECKING:
    from packflow.backend.base import InferenceBackend

__all__ = [
    "NO_STEPS",
    "STEP_ATTRS",
    "BackendMeta",
    "Steps",
    "bind_steps",
    "run_steps",
    "step_failed",
    "steps_changed",
]

STEP_ATTRS = frozenset(
    {"_preprocess", "_preprocessor", "transform_inputs", "execute", "transform_outputs"}
)
_epoch = 0

# (epoch, preprocess or None when the input passes through, transform_inputs or None,
#  transform_outputs or None)
Steps = tuple[
    int, Callable[[Any], Any] | None, Callable[[Any], Any] | None, Callable[[Any], Any] | None
]
NO_STEPS: Steps = (-1, None, None, None)


def steps_changed() -> None:
    """A step attribute of some backend class or instance was set or deleted."""
    global _epoch
    _epoch += 1


class BackendMeta(ABCMeta):
    """``ABCMeta`` that notices when a backend class's pipeline step is set or deleted."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in STEP_ATTRS:
            steps_changed()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        if name in STEP_ATTRS:
            steps_changed()


def bind_steps(backend: InferenceBackend, preprocess: Callable[[Any], Any] | None) -> Steps:
    """Cache ``backend``'s steps as they are now; ``preprocess`` ``None``: inputs pass through."""
    steps: Steps = (
        _epoch,
        preprocess,
        getattr(backend, "transform_inputs", None),
        getattr(backend, "transform_outputs", None),
    )
    backend._packflow_state[1] = steps
    return steps


def run_steps(
    backend: InferenceBackend, records: list[dict[str, Any]]
) -> tuple[list[Any], CallTimes]:
    """Run the steps on checked records; return the final output and the step times."""
    clock = perf_counter_ns
    steps = backend._packflow_state[1]
    if steps[0] != _epoch:
        steps = backend._bind_steps()
    _epoch_seen, preprocess, transform_inputs, transform_outputs = steps
    t0 = clock()
    if preprocess is None:
        data = records
    else:
        try:
            data = preprocess(records)
        except Exception as exc:
            raise _preprocess_failed(backend, exc) from exc
    t1 = clock()
    if transform_inputs is None:
        transform_inputs_ns = None
        t2 = t1
    else:
        try:
            data = transform_inputs(data)
        except Exception as exc:
            raise step_failed(backend, "transform_inputs", exc, data) from exc
        t2 = clock()
        transform_inputs_ns = t2 - t1
    try:
        outputs = backend.execute(data)
    except Exception as exc:
        raise step_failed(backend, "execute", exc, data) from exc
    t3 = clock()
    if transform_outputs is None:
        transform_outputs_ns = None
    else:
        try:
            outputs = transform_outputs(outputs)
        except Exception as exc:
            raise step_failed(backend, "transform_outputs", exc) from exc
        transform_outputs_ns = clock() - t3
    if not isinstance(outputs, list):
        raise _not_a_list(backend, outputs)
    return outputs, (len(records), t1 - t0, transform_inputs_ns, t3 - t2, transform_outputs_ns)


def step_failed(
    backend: InferenceBackend, step: str, exc: Exception, step_input: Any = None
) -> InferenceBackendRuntimeError:
    """The error for ``step`` of ``backend`` raising ``exc`` (chain it with ``from exc``).

    ``step_input``, when given, is what the step received: the preprocessor may add a hint
    about it (e.g. the cells of an object array that hold ``None``).
    """
    hint = None if step_input is None else backend._preprocessor.failure_hint(step_input)
    return InferenceBackendRuntimeError(
        f"{step}() failed with the following error: {exc} "
        f"({type(exc).__name__} in step '{step}' of {type(backend).__name__})"
        + (f"; {hint}" if hint else ""),
        step=step,
        record_index=getattr(exc, "record_index", None),
    )


def _preprocess_failed(backend: InferenceBackend, exc: Exception) -> InferenceBackendRuntimeError:
    if not isinstance(exc, PreprocessorRuntimeError):
        wrapped = wrapped_error(exc)
        wrapped.__cause__ = exc
        exc = wrapped
    return step_failed(backend, "preprocess", exc)


def _not_a_list(backend: InferenceBackend, outputs: Any) -> InferenceBackendRuntimeError:
    return InferenceBackendRuntimeError(
        f"Output of inference backend {type(backend).__name__} is not a list. "
        f"Received type: {type(outputs).__name__}"
    )

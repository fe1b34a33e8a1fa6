"""Runs the backend off the event loop and isolates poison messages.

:class:`BatchRunner` hands ``backend.run(records)`` to a bounded thread pool with
``loop.run_in_executor`` inside a copied :mod:`contextvars` context, so the event loop never
runs backend code and structlog context follows the call. It measures how long each call
waited in the executor queue.

When a call raises, or returns a different number of outputs than records, the batch is split
at message granularity: a failing record with a known ``record_index`` removes its message at
once, otherwise the messages are bisected until each failing message is alone. Healthy
neighbours still get their outputs; each failing message gets a :class:`Failure`.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from packflow.backend.metrics import STEP_NAMES

__all__ = ["BatchRun", "BatchRunner", "Failure", "SupportsRun", "ask_ready"]


class _RunResult(Protocol):
    @property
    def outputs(self) -> list[Any]: ...

    @property
    def metrics(self) -> Any: ...


class SupportsRun(Protocol):
    """What the worker needs from a backend: a thread-safe ``run(records)``."""

    def run(self, records: list[dict[str, Any]]) -> _RunResult: ...


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a message's records could not be processed.

    ``record_index`` is relative to the message's own records when known.
    """

    error_type: str
    message: str
    step: str
    record_index: int | None = None


@dataclass(slots=True)
class BatchRun:
    """Per-message results of one batch and what it cost.

    ``results[i]`` is the list of outputs for message ``i`` or a :class:`Failure`.
    """

    results: list[list[Any] | Failure]
    steps_ms: dict[str, float] = field(default_factory=dict)
    executor_queue_wait_ms: float = 0.0
    backend_calls: int = 0
    failed_calls: int = 0


def _step_times(metrics: Any) -> dict[str, float]:
    times = getattr(metrics, "execution_times", None)
    if times is None:
        return {}
    if isinstance(times, dict):
        return {k: float(v) for k, v in times.items() if v is not None}
    found: dict[str, float] = {}
    for name in STEP_NAMES:
        value = getattr(times, name, None)
        if value is not None:
            found[name] = float(value)
    return found


def _describe(exc: BaseException) -> tuple[str, str]:
    """The error type and message to report: the backend's original error when chained.

    A step error of the SDK only wraps the backend's own exception with prose the dead letter
    already carries (the step, the backend): report the original as ``Type: message``.
    """
    cause = exc.__cause__ or exc
    if cause is not exc and getattr(exc, "step", None) is not None:
        return type(cause).__name__, f"{type(cause).__name__}: {cause}"
    text = str(exc)
    if cause is not exc and str(cause) not in text:
        text = f"{text}: {type(cause).__name__}: {cause}"
    return type(cause).__name__, text


class BatchRunner:
    """Runs batches of messages through a backend in ``executor`` (``parallel`` calls at once).

    ``last_step`` is the name reported when the backend returns outputs of the wrong length
    (the step that produced them).
    """

    def __init__(self, backend: SupportsRun, executor: Executor, *, parallel: int = 1) -> None:
        self._backend = backend
        self._executor = executor
        self._parallel = max(1, parallel)
        self.last_step = "transform_outputs" if hasattr(backend, "transform_outputs") else "execute"

    def _call(self, records: list[dict[str, Any]], submitted: float) -> tuple[_RunResult, float]:
        waited = time.perf_counter() - submitted
        return self._backend.run(records), waited

    async def _run_once(self, records: list[dict[str, Any]], stats: BatchRun) -> _RunResult:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        stats.backend_calls += 1
        result, waited = await loop.run_in_executor(
            self._executor, ctx.run, self._call, records, time.perf_counter()
        )
        stats.executor_queue_wait_ms += waited * 1000.0
        return result

    async def run(self, messages: Sequence[list[dict[str, Any]]]) -> BatchRun:
        """Process the records of each message; see the module docstring.

        With ``parallel`` > 1 the messages are split into that many contiguous parts that
        run concurrently (for backends that release the GIL); results keep their order.
        """
        stats = BatchRun(results=[[] for _ in messages])
        indices = list(range(len(messages)))
        parts = min(self._parallel, len(indices))
        if parts <= 1:
            await self._solve(indices, messages, stats)
        else:
            size = -(-len(indices) // parts)
            chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
            await asyncio.gather(*(self._solve(chunk, messages, stats) for chunk in chunks))
        return stats

    async def _solve(
        self, idx: list[int], messages: Sequence[list[dict[str, Any]]], stats: BatchRun
    ) -> None:
        idx = [i for i in idx if messages[i]]  # empty arrays need no backend call
        if not idx:
            return
        records = [record for i in idx for record in messages[i]]
        failure: Failure
        record_index: int | None = None
        try:
            result = await self._run_once(records, stats)
        except Exception as exc:  # the backend's own errors, whatever their type
            stats.failed_calls += 1
            error_type, text = _describe(exc)
            step = getattr(exc, "step", None) or "execute"
            record_index = getattr(exc, "record_index", None)
            failure = Failure(error_type, text, step)
        else:
            outputs = result.outputs
            if isinstance(outputs, list) and len(outputs) == len(records):
                start = 0
                for i in idx:
                    end = start + len(messages[i])
                    stats.results[i] = outputs[start:end]
                    start = end
                for name, ms in _step_times(result.metrics).items():
                    stats.steps_ms[name] = stats.steps_ms.get(name, 0.0) + ms
                return
            stats.failed_calls += 1
            got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
            failure = Failure(
                "OutputLengthError",
                f"backend returned {got} outputs for {len(records)} records",
                self.last_step,
            )
        if len(idx) == 1:
            stats.results[idx[0]] = _with_index(failure, record_index)
            return
        if isinstance(record_index, int) and 0 <= record_index < len(records):
            culprit, local = _locate(idx, messages, record_index)
            stats.results[culprit] = _with_index(failure, local)
            await self._solve([i for i in idx if i != culprit], messages, stats)
            return
        mid = len(idx) // 2
        await self._solve(idx[:mid], messages, stats)
        await self._solve(idx[mid:], messages, stats)


def _with_index(failure: Failure, record_index: int | None) -> Failure:
    if record_index is None:
        return failure
    return Failure(failure.error_type, failure.message, failure.step, record_index)


def _locate(
    idx: list[int], messages: Sequence[list[dict[str, Any]]], record_index: int
) -> tuple[int, int]:
    """The message holding flat record ``record_index`` and the index inside that message."""
    start = 0
    for i in idx:
        count = len(messages[i])
        if record_index < start + count:
            return i, record_index - start
        start += count
    raise IndexError(record_index)  # pragma: no cover - caller checked the range


async def ask_ready(backend: object, executor: Executor, seconds: float) -> bool:
    """The backend's ``ready()``, asked in ``executor`` within ``seconds`` (True without one).

    An error or a late answer counts as not ready.
    """
    ready = getattr(backend, "ready", None)
    if ready is None:
        return True
    loop = asyncio.get_running_loop()
    try:
        return bool(await asyncio.wait_for(loop.run_in_executor(executor, ready), seconds))
    except Exception:
        return False

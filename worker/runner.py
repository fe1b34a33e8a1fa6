"""Runs the backend off the event loop and isolates poison messages.

:class:`BatchRunner` hands ``backend.run(records)`` to a bounded thread pool with
``loop.run_in_executor`` inside a copied :mod:`contextvars` context, so the event loop never
runs backend code and structlog context follows the call. It measures how long each call
waited in the executor queue.

A call that fails transiently (:class:`~worker.retry.RetryPolicy`), or runs past the call
timeout, is retried with backoff; if it still fails, the whole run raises
:class:`~worker.retry.BackendUnavailable` and nothing is bisected. When a call raises otherwise,
or returns a different number of outputs than records, the batch is split at message
granularity: a failing record with a known ``record_index`` removes its message at once,
otherwise the messages are bisected until each failing message is alone. Healthy neighbours
still get their outputs; each failing message gets a :class:`Failure`. When at least
``breaker_ratio`` of a batch's messages (and ``breaker_min_messages`` of them) fail the same
way, that is an outage too: :class:`~worker.retry.BackendUnavailable`.

A call past the timeout keeps its thread (a thread cannot be killed): while it runs, its
executor slot is taken, and a call with no free slot fails at once as a timeout.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import dataclasses
import itertools
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from packflow.backend.metrics import STEP_NAMES
from worker._backoff import Backoff
from worker.retry import BackendTimeout, BackendUnavailable, RetryPolicy

if TYPE_CHECKING:
    from worker.tracing import BatchTracer

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
    attempts: int = 1


_NO_OUTPUTS: list[Any] = []  # the results of a message without records; shared, never mutated


@dataclass(slots=True, init=False)
class BatchRun:
    """Per-message results of one batch and what it cost.

    ``results[i]`` is the list of outputs for message ``i`` or a :class:`Failure`. When every
    message had one record and one backend call succeeded, ``one_each`` is that call's
    outputs, one per message (``results`` is then made from it when first read).
    """

    _results: list[list[Any] | Failure]
    one_each: list[Any] | None
    steps_ms: dict[str, float]
    executor_queue_wait_ms: float
    backend_calls: int
    failed_calls: int
    retries: int
    timed_out_calls: int

    def __init__(self, messages: int) -> None:
        self._results = [_NO_OUTPUTS] * messages
        self.one_each = None
        self.steps_ms = {}
        self.executor_queue_wait_ms = 0.0
        self.backend_calls = self.failed_calls = self.retries = self.timed_out_calls = 0

    @property
    def results(self) -> list[list[Any] | Failure]:
        """The outputs of each message, or its :class:`Failure`."""
        if self.one_each is not None:
            self._results = [[output] for output in self.one_each]
            self.one_each = None
        return self._results


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

    def __init__(
        self,
        backend: SupportsRun,
        executor: Executor,
        *,
        parallel: int = 1,
        policy: RetryPolicy | None = None,
        timeout: float | None = None,
        breaker_ratio: float = 1.0,
        breaker_min_messages: int = 2**31,
        tracer: BatchTracer | None = None,
    ) -> None:
        self._backend = backend
        self._executor = executor
        self._parallel = max(1, parallel)
        self._policy = policy or RetryPolicy(max_attempts=1)
        self._timeout = timeout
        self._breaker_ratio = breaker_ratio
        self._breaker_min_messages = breaker_min_messages
        self._stuck: dict[concurrent.futures.Future[Any], float] = {}
        self._tracer = tracer
        self.last_step = "transform_outputs" if hasattr(backend, "transform_outputs") else "execute"

    def stuck_seconds(self) -> float:
        """How long the oldest call past the timeout has been running (0 when none)."""
        if not self._stuck:
            return 0.0
        return time.monotonic() - min(self._stuck.values())

    def _call(self, records: list[dict[str, Any]], submitted: float) -> tuple[_RunResult, float]:
        waited = time.perf_counter() - submitted
        return self._backend.run(records), waited

    async def _run_once(self, records: list[dict[str, Any]], stats: BatchRun) -> _RunResult:
        if self._tracer is None:
            return await self._submit(records, stats)
        with self._tracer.call(len(records)) as span:
            try:
                result = await self._submit(records, stats)
            except Exception as exc:
                span.failed(exc)
                raise
            span.steps(_step_times(result.metrics))
            return result

    async def _submit(self, records: list[dict[str, Any]], stats: BatchRun) -> _RunResult:
        if len(self._stuck) >= self._parallel:
            stats.timed_out_calls += 1
            raise BackendTimeout(
                f"no executor slot is free: {len(self._stuck)} backend call(s) still run past "
                f"--backend-timeout-seconds {self._timeout:g}"
            )
        ctx = contextvars.copy_context()
        stats.backend_calls += 1
        started = time.monotonic()
        future = self._executor.submit(ctx.run, self._call, records, time.perf_counter())
        try:
            result, waited = await asyncio.wait_for(asyncio.wrap_future(future), self._timeout)
        except TimeoutError:
            if future.done():  # finished as the timeout fired: take its result
                result, waited = future.result()
            else:
                self._track_stuck(future, started)
                stats.timed_out_calls += 1
                raise BackendTimeout(
                    f"backend call did not return within --backend-timeout-seconds "
                    f"{self._timeout:g}"
                ) from None
        stats.executor_queue_wait_ms += waited * 1000.0
        return result

    def _track_stuck(self, future: concurrent.futures.Future[Any], started: float) -> None:
        loop = asyncio.get_running_loop()
        self._stuck[future] = started

        def finished(_: concurrent.futures.Future[Any]) -> None:
            loop.call_soon_threadsafe(self._stuck.pop, future, None)

        future.add_done_callback(finished)

    async def _attempt(
        self, records: list[dict[str, Any]], stats: BatchRun
    ) -> tuple[_RunResult | None, Exception | None, int]:
        """One call, retried while it fails transiently: (result, None, attempts) or
        (None, error, attempts) for an error that is not transient.

        Raises :class:`BackendUnavailable` when the attempts run out on a transient failure.
        """
        policy = self._policy
        backoff: Backoff | None = None  # made on the first transient failure only: hot path
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self._run_once(records, stats), None, attempts
            except Exception as exc:  # the backend's own errors, whatever their type
                stats.failed_calls += 1
                if not policy.is_transient(exc):
                    return None, exc, attempts
                if attempts >= policy.max_attempts:
                    raise BackendUnavailable(_typed(*_describe(exc)), attempts=attempts) from exc
            stats.retries += 1
            if backoff is None:
                backoff = Backoff(
                    initial=policy.initial_backoff, maximum=policy.max_backoff, jitter=0.5
                )
            await asyncio.sleep(backoff.next_delay())

    async def run(self, messages: Sequence[list[dict[str, Any]]]) -> BatchRun:
        """Process the records of each message; see the module docstring.

        With ``parallel`` > 1 the messages are split into that many contiguous parts that
        run concurrently (for backends that release the GIL); results keep their order.
        """
        stats = BatchRun(len(messages))
        indices = list(range(len(messages)))
        parts = min(self._parallel, len(indices))
        try:
            if parts <= 1:
                await self._solve(indices, messages, stats)
            else:
                size = -(-len(indices) // parts)
                chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
                async with asyncio.TaskGroup() as group:
                    for chunk in chunks:
                        group.create_task(self._solve(chunk, messages, stats))
        except* BackendUnavailable as caught:
            raise caught.exceptions[0] from None
        if stats.one_each is None:
            self._check_systematic(stats, sum(1 for m in messages if m))
        return stats

    def _check_systematic(self, stats: BatchRun, messages: int) -> None:
        """Most messages failing the same way is an outage, not poison."""
        failures = [r for r in stats.results if isinstance(r, Failure)]
        if not failures or messages < self._breaker_min_messages:
            return
        kinds = collections.Counter((f.error_type, f.step) for f in failures)
        (error_type, step), count = kinds.most_common(1)[0]
        if count >= self._breaker_ratio * messages:
            sample = next(f for f in failures if (f.error_type, f.step) == (error_type, step))
            raise BackendUnavailable(
                f"{count} of {messages} messages failed in {step}: "
                f"{_typed(error_type, sample.message)}",
                attempts=stats.backend_calls,
            )

    async def _solve(
        self, idx: list[int], messages: Sequence[list[dict[str, Any]]], stats: BatchRun
    ) -> None:
        if len(idx) == len(messages) and all(messages):  # the whole batch, no empty array
            records = list(itertools.chain.from_iterable(messages))
        else:
            idx = [i for i in idx if messages[i]]  # empty arrays need no backend call
            if not idx:
                return
            records = [record for i in idx for record in messages[i]]
        failure: Failure
        record_index: int | None = None
        result, error, attempts = await self._attempt(records, stats)
        if error is not None:
            error_type, text = _describe(error)
            step = getattr(error, "step", None) or "execute"
            record_index = getattr(error, "record_index", None)
            failure = Failure(error_type, text, step, attempts=attempts)
        else:
            assert result is not None
            outputs = result.outputs
            if isinstance(outputs, list) and len(outputs) == len(records):
                if len(outputs) == len(idx) == len(messages):
                    stats.one_each = outputs
                else:
                    results, start = stats.results, 0
                    for i in idx:
                        end = start + len(messages[i])
                        results[i] = outputs[start:end]
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


def _typed(error_type: str, text: str) -> str:
    """``Type: message``, the type once (a message may already start with it)."""
    if not text:
        return error_type
    return text if text.startswith(error_type) else f"{error_type}: {text}"


def _with_index(failure: Failure, record_index: int | None) -> Failure:
    if record_index is None:
        return failure
    return dataclasses.replace(failure, record_index=record_index)


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

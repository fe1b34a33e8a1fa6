"""Transient failures: which errors count, how calls are retried, when a batch is an outage."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from packflow import InferenceBackend
from packflow.exceptions import InferenceBackendRuntimeError, RetryableError
from tests.e2e.conftest import wait_for
from worker._backoff import Backoff
from worker.retry import BackendTimeout, BackendUnavailable, RetryPolicy
from worker.runner import BatchRunner, Failure

FAST = {"initial_backoff": 0.001, "max_backoff": 0.002}


class FailsFirst(InferenceBackend):
    """Raises ``error`` on the first ``times`` calls, then echoes its inputs."""

    def initialize(self) -> None:
        self.calls = 0
        self.error: Exception = RetryableError("busy")
        self.times = 1

    def execute(self, inputs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return [dict(r) for r in inputs]


class Blocks(InferenceBackend):
    def initialize(self) -> None:
        self.release = threading.Event()

    def execute(self, inputs: Any) -> Any:
        self.release.wait(30)
        return inputs


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1) as pool:
        yield pool


def test_transient_is_the_error_or_anything_it_was_raised_from():
    policy = RetryPolicy(transient=frozenset({"ConnectionError"}))
    assert policy.is_transient(RetryableError("x"))
    assert policy.is_transient(ConnectionRefusedError())  # a subclass of a named type
    assert policy.is_transient(BackendTimeout("late"))
    wrapped = InferenceBackendRuntimeError("step 'execute' failed", step="execute")
    wrapped.__cause__ = ConnectionResetError("peer")
    assert policy.is_transient(wrapped)
    assert not policy.is_transient(ValueError("bad record"))
    assert not RetryPolicy().is_transient(ConnectionError())


def test_backoff_jitter_shortens_delays_within_the_share():
    backoff = Backoff(initial=1.0, maximum=8.0, jitter=0.5)
    delays = [backoff.next_delay() for _ in range(5)]
    for delay, full in zip(delays, [1, 2, 4, 8, 8], strict=True):
        assert full * 0.5 <= delay <= full
    with pytest.raises(ValueError, match="jitter"):
        Backoff(initial=1, maximum=2, jitter=2)


async def test_a_transient_failure_is_retried_and_not_dead_lettered(executor):
    backend = FailsFirst()
    backend.times = 2
    runner = BatchRunner(backend, executor, policy=RetryPolicy(max_attempts=3, **FAST))
    run = await runner.run([[{"id": 1}], [{"id": 2}]])
    assert run.results == [[{"id": 1}], [{"id": 2}]]
    assert (run.backend_calls, run.failed_calls, run.retries) == (3, 2, 2)


async def test_a_transient_failure_past_its_attempts_is_an_outage_not_a_bisection(executor):
    backend = FailsFirst()
    backend.times = 100
    runner = BatchRunner(backend, executor, policy=RetryPolicy(max_attempts=3, **FAST))
    with pytest.raises(BackendUnavailable, match="RetryableError: busy") as caught:
        await runner.run([[{"id": i}] for i in range(8)])
    assert caught.value.attempts == 3
    assert backend.calls == 3  # three calls of the whole batch, no bisection


class TransientThenPoison(InferenceBackend):
    def initialize(self) -> None:
        self.calls = 0

    def execute(self, inputs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise RetryableError("busy")
        raise ValueError("poison")


async def test_a_poison_error_after_a_transient_one_records_both_attempts(executor):
    runner = BatchRunner(
        TransientThenPoison(), executor, policy=RetryPolicy(max_attempts=3, **FAST)
    )
    run = await runner.run([[{"id": 1}]])
    (failure,) = run.results
    assert isinstance(failure, Failure)
    assert (failure.error_type, failure.attempts) == ("ValueError", 2)


async def test_most_messages_failing_the_same_way_is_an_outage(executor):
    backend = FailsFirst()
    backend.times = 10**6
    backend.error = KeyError("feature 'age' missing")
    runner = BatchRunner(backend, executor, breaker_ratio=0.9, breaker_min_messages=4)
    with pytest.raises(BackendUnavailable, match="4 of 4 messages failed in execute: KeyError"):
        await runner.run([[{"id": i}] for i in range(4)])
    few = BatchRunner(backend, executor, breaker_ratio=0.9, breaker_min_messages=5)
    run = await few.run([[{"id": i}] for i in range(4)])  # under the minimum: poison
    assert all(isinstance(r, Failure) for r in run.results)


async def test_a_call_past_the_timeout_keeps_its_slot_until_it_returns(executor):
    backend = Blocks()
    policy = RetryPolicy(max_attempts=2, **FAST)
    runner = BatchRunner(backend, executor, policy=policy, timeout=0.05)
    with pytest.raises(BackendUnavailable, match="no executor slot is free") as caught:
        await runner.run([[{"id": 1}]])
    assert caught.value.attempts == 2
    assert runner.stuck_seconds() > 0
    backend.release.set()
    executor.submit(lambda: None).result(timeout=10)  # the stuck call has returned
    await wait_for(lambda: runner.stuck_seconds() == 0, 5, "the slot to be free again")
    run = await runner.run([[{"id": 2}]])
    assert run.results == [[{"id": 2}]]

"""BatchRunner: backend code runs in the executor; poison messages are isolated."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packflow import InferenceBackend
from worker.runner import BatchRunner, Failure


class Poison(InferenceBackend):
    """Raises when any record is poisoned; remembers the threads and batch sizes it saw."""

    def initialize(self) -> None:
        self.threads: set[str] = set()
        self.sizes: list[int] = []

    def execute(self, inputs: Any) -> Any:
        self.threads.add(threading.current_thread().name)
        self.sizes.append(len(inputs))
        if any(r.get("poison") for r in inputs):
            raise ValueError("poisoned")
        return [dict(r, ok=True) for r in inputs]


class DropsRows(InferenceBackend):
    """Returns one output too few when a record asks for it."""

    def execute(self, inputs: Any) -> Any:
        out = [dict(r) for r in inputs]
        return out[:-1] if any(r.get("short") for r in inputs) else out


@pytest.fixture
def executor():
    with ThreadPoolExecutor(1, thread_name_prefix="pf-backend") as pool:
        yield pool


async def test_a_healthy_batch_runs_in_one_executor_call_off_the_loop_thread(executor):
    backend = Poison()
    run = await BatchRunner(backend, executor).run([[{"a": 1}], [{"a": 2}, {"a": 3}], []])
    assert run.results == [[{"a": 1, "ok": True}], [{"a": 2, "ok": True}, {"a": 3, "ok": True}], []]
    assert run.backend_calls == 1
    assert backend.threads == {"pf-backend_0"}
    assert set(run.steps_ms) >= {"preprocess", "execute"}
    assert run.executor_queue_wait_ms >= 0


@pytest.mark.parametrize("poisoned", [{0}, {63}, {17, 18}, {0, 31, 32, 63}])
async def test_bisection_isolates_exactly_the_poisoned_messages(executor, poisoned):
    messages = [[{"id": i, "poison": i in poisoned}] for i in range(64)]
    run = await BatchRunner(Poison(), executor).run(messages)
    for i, result in enumerate(run.results):
        if i in poisoned:
            assert isinstance(result, Failure)
            assert result.error_type == "ValueError"
            assert result.step == "execute"
            assert result.message == "ValueError: poisoned"
        else:
            assert result == [{"id": i, "poison": False, "ok": True}]
    assert run.failed_calls >= len(poisoned)


async def test_one_poison_in_500_costs_about_two_calls_per_halving(executor):
    messages = [[{"id": i, "poison": i == 137}] for i in range(500)]
    run = await BatchRunner(Poison(), executor).run(messages)
    assert sum(isinstance(r, Failure) for r in run.results) == 1
    assert run.backend_calls <= 2 * 9 + 1


async def test_a_wrong_output_length_is_a_batch_error_isolated_the_same_way(executor):
    messages = [[{"id": 0}], [{"id": 1, "short": True}], [{"id": 2}]]
    run = await BatchRunner(DropsRows(), executor).run(messages)
    assert run.results[0] == [{"id": 0}]
    assert run.results[2] == [{"id": 2}]
    failure = run.results[1]
    assert isinstance(failure, Failure)
    assert failure.error_type == "OutputLengthError"
    assert "returned 0 outputs for 1 records" in failure.message


class Indexed:
    """A backend reporting the failing record's index, as the SDK's preprocessor does."""

    def __init__(self) -> None:
        self.calls = 0

    def run(self, records: list[dict[str, Any]]) -> Any:
        from packflow.exceptions import InferenceBackendRuntimeError

        self.calls += 1
        for index, record in enumerate(records):
            if record.get("bad"):
                raise InferenceBackendRuntimeError(
                    f"record {index} is bad", step="preprocess", record_index=index
                )
        return type("R", (), {"outputs": list(records), "metrics": None})()


async def test_a_known_record_index_removes_its_message_without_bisecting(executor):
    backend = Indexed()
    messages = [[{"id": i}] for i in range(10)]
    messages[6] = [{"id": 60}, {"id": 61, "bad": True}]
    run = await BatchRunner(backend, executor).run(messages)
    failure = run.results[6]
    assert isinstance(failure, Failure)
    assert failure.step == "preprocess"
    assert failure.record_index == 1
    assert backend.calls == 2
    assert all(run.results[i] == [{"id": i}] for i in range(10) if i != 6)


class Rendezvous(InferenceBackend):
    """Each call waits until two calls are inside ``execute`` at once (or fails)."""

    def initialize(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)

    def execute(self, inputs: Any) -> Any:
        self.barrier.wait()
        return [dict(r, ok=True) for r in inputs]


async def test_with_parallel_calls_a_batch_is_split_and_runs_concurrently_in_order():
    with ThreadPoolExecutor(2) as pool:
        runner = BatchRunner(Rendezvous(), pool, parallel=2)
        run = await runner.run([[{"id": i}] for i in range(7)])
    assert run.results == [[{"id": i, "ok": True}] for i in range(7)]
    assert run.backend_calls == 2


@pytest.mark.parametrize(
    ("groups", "one_each"),
    [
        ([[{"a": 1}], [{"a": 2}]], True),  # one record per message: the call's outputs as they are
        ([[{"a": 1}], [{"a": 2}, {"a": 3}]], False),  # an array of two
        ([[{"a": 1}], []], False),  # an empty array (or a dead letter) has no output
        ([[{"a": 1, "poison": True}], [{"a": 2}]], False),  # bisected
    ],
)
async def test_one_output_per_message_is_kept_whole_and_reads_as_per_message_results(
    executor, groups, one_each
):
    run = await BatchRunner(Poison(), executor).run(groups)
    assert (run.one_each is not None) is one_each
    expected = [
        [dict(r, ok=True) for r in group] if not any(r.get("poison") for r in group) else None
        for group in groups
    ]
    for result, want in zip(run.results, expected, strict=True):
        if want is None:
            assert isinstance(result, Failure)
        else:
            assert result == want
    assert run.one_each is None  # read as results once, it is results from then on


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(0, 3), min_size=1, max_size=12))
async def test_each_message_gets_the_outputs_of_its_own_records_from_one_call(sizes):
    groups = [[{"m": m, "r": r} for r in range(size)] for m, size in enumerate(sizes)]
    with ThreadPoolExecutor(1) as pool:
        run = await BatchRunner(Poison(), pool).run(groups)
    assert run.results == [[dict(record, ok=True) for record in group] for group in groups]
    assert run.backend_calls == (1 if any(sizes) else 0)

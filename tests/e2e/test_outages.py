"""A backend's dependency failing for a while: retried and held, never dead-lettered.

Each test checks that every input ends in exactly one output or dead letter.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

import orjson
import pytest
from structlog.testing import capture_logs

from packflow.exceptions import RetryableError
from tests.e2e.conftest import consume, get_json, produce, running_worker, wait_for, wait_status
from worker.app import Worker

pytestmark = pytest.mark.kafka


class _Backend:
    """A worker backend (``run(records)``) whose outputs echo each record's id."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def run(self, records):
        with self._lock:
            self.calls += 1
        self.check(records)
        return type(
            "Result", (), {"outputs": [{"id": r["id"]} for r in records], "metrics": None}
        )()

    def check(self, records) -> None:
        if any(r.get("poison") for r in records):
            raise ValueError("poison record")


class DependencyDown(_Backend):
    """Raises ConnectionError while ``down`` is set (the feature store is unreachable)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = threading.Event()
        self.failures = 0

    def check(self, records) -> None:
        if self.down.is_set():
            self.failures += 1
            raise ConnectionError("feature store at 10.0.0.7:6379 refused the connection")
        super().check(records)


class Flaky(_Backend):
    """Fails 30% of calls with RetryableError (seeded), plus any poison record for real."""

    def __init__(self, seed: int = 7) -> None:
        super().__init__()
        self._random = random.Random(seed)
        self.transient = 0

    def check(self, records) -> None:
        with self._lock:
            flake = self._random.random() < 0.3
        if flake:
            self.transient += 1
            raise RetryableError("GPU busy")
        super().check(records)


class Hangs(_Backend):
    """The first call holding record ``hang_id`` blocks until ``release`` is set."""

    def __init__(self, hang_id: int) -> None:
        super().__init__()
        self.hang_id = hang_id
        self.release = threading.Event()
        self.hung = threading.Event()

    def check(self, records) -> None:
        if any(r["id"] == self.hang_id for r in records) and not self.hung.is_set():
            self.hung.set()
            self.release.wait(120)
        super().check(records)


def _inputs(ids, poison=()):
    return [(str(i).encode(), orjson.dumps({"id": i, "poison": i in poison})) for i in ids]


def _ids(records):
    return sorted(orjson.loads(r.value)["id"] for r in records)


OUTAGE = {
    "retry_on": ("ConnectionError",),
    "retry_max_attempts": 3,
    "retry_initial_backoff_ms": 20,
    "retry_max_backoff_ms": 100,
    "breaker_max_backoff_ms": 500,
}


async def test_a_dependency_down_for_10s_holds_the_stream_and_loses_nothing(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(2)
    backend = DependencyDown()
    settings = worker_settings(**names, **OUTAGE, max_batch_size=50)
    async with running_worker(settings, backend) as worker:
        port = worker.health_port
        await produce(kafka_bootstrap, names["input_topic"], _inputs(range(100)))
        await consume(kafka_bootstrap, names["output_topic"], 100, within=30)
        await wait_status(port, "/readyz", 200, 15)
        assignments = worker.assignments
        backend.down.set()
        up_at = time.monotonic() + 10
        await produce(kafka_bootstrap, names["input_topic"], _inputs(range(100, 200)))
        body = await wait_status(port, "/readyz", 503, 15)
        assert any(
            r.startswith("backend failing: ConnectionError: feature store") for r in body["reasons"]
        ), body
        while time.monotonic() < up_at:  # the outage lasts its 10 s, the worker holding
            await asyncio.sleep(0.2)
            assert worker.failure is None
        backend.down.clear()
        await wait_status(port, "/readyz", 200, 30)
        outputs = await consume(kafka_bootstrap, names["output_topic"], 200, within=30)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 0, settle=1.0)
        assert worker.assignments == assignments  # kept its membership: no rebalance
    assert _ids(outputs) == list(range(200))
    assert letters == []
    assert backend.failures > 3  # it really was held and retried, not skipped
    held = [m for m in worker.recent_metrics if m["breaker_retries"] > 0]
    assert held, "a batch should report the breaker's retries"
    assert held[0]["breaker_held_ms"] >= 5_000


async def test_a_flaky_backend_and_one_poison_record_give_exactly_one_dead_letter(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    backend = Flaky()
    settings = worker_settings(
        **names,
        retry_max_attempts=6,
        retry_initial_backoff_ms=1,
        retry_max_backoff_ms=5,
        breaker_max_backoff_ms=50,
        max_batch_size=40,
    )
    await produce(kafka_bootstrap, names["input_topic"], _inputs(range(300), poison={150}))
    async with running_worker(settings, backend) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], 299, within=60)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 1, within=30, settle=1.0)
        await wait_for(lambda: worker.budget.empty, 20, "every batch to settle")
    assert _ids(outputs) == [i for i in range(300) if i != 150]
    (letter,) = [orjson.loads(x.value) for x in letters]
    assert letter["source"]["offset"] == 150
    assert letter["error"]["type"] == "ValueError"
    assert backend.transient >= 10  # 30% of the calls failed and were retried
    assert sum(m["backend_retries"] for m in worker.recent_metrics) >= 10


async def test_a_flaky_backend_alone_dead_letters_nothing(kafka_bootstrap, topics, worker_settings):
    names = await topics(1)
    backend = Flaky(seed=3)
    settings = worker_settings(
        **names,
        retry_max_attempts=2,
        retry_initial_backoff_ms=1,
        retry_max_backoff_ms=5,
        breaker_max_backoff_ms=50,
        max_batch_size=5,
    )
    await produce(kafka_bootstrap, names["input_topic"], _inputs(range(200)))
    async with running_worker(settings, backend):
        outputs = await consume(kafka_bootstrap, names["output_topic"], 200, within=60)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 0, settle=1.0)
    assert _ids(outputs) == list(range(200))
    assert letters == []
    assert backend.transient >= 10


async def test_every_message_failing_the_same_way_is_held_not_dead_lettered(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    backend = _Backend()
    settings = worker_settings(**names, breaker_min_messages=5, breaker_max_backoff_ms=200)
    await produce(kafka_bootstrap, names["input_topic"], _inputs(range(20), poison=set(range(20))))
    async with running_worker(settings, backend) as worker:
        body = await wait_status(worker.health_port, "/readyz", 503, 20)
        assert any(
            "20 of 20 messages failed in execute: ValueError" in r for r in body["reasons"]
        ), body
        calls = backend.calls
        await wait_for(lambda: backend.calls > calls, 10, "the held batch to be run again")
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 0, settle=0.5)
    assert letters == []


async def test_a_hanging_call_times_out_fails_healthz_and_a_restart_loses_nothing(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    backend = Hangs(hang_id=30)
    settings = worker_settings(
        **names,
        backend_timeout_seconds=0.5,
        backend_timeout_grace_seconds=2,
        retry_max_attempts=2,
        retry_initial_backoff_ms=10,
        breaker_max_backoff_ms=200,
        max_batch_size=10,
        shutdown_timeout_seconds=10,
    )
    await produce(kafka_bootstrap, names["input_topic"], _inputs(range(60)))
    worker = Worker(settings, backend)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.started.wait(), 60)
        await asyncio.to_thread(backend.hung.wait, 30)
        body = await wait_status(worker.health_port, "/healthz", 503, 15)
        assert "restart me" in body["error"]
        (_, ready) = await asyncio.to_thread(get_json, worker.health_port, "/readyz")
        assert any("backend failing" in r for r in ready["reasons"]), ready
        first = await consume(kafka_bootstrap, names["output_topic"], 30, within=10, settle=0.5)
        assert _ids(first) == list(range(30))  # nothing past the hung batch was published
    finally:
        worker.request_stop()  # what the orchestrator's restart does first
        code = await asyncio.wait_for(task, 30)
        backend.release.set()
    assert code == 0
    healthy = _Backend()
    async with running_worker(settings, healthy):
        outputs = await consume(kafka_bootstrap, names["output_topic"], 60, within=30, settle=0.5)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 0, settle=0.5)
    assert _ids(outputs) == list(range(60))  # each input exactly once
    assert letters == []


async def test_a_held_batch_lets_a_rebalance_through_and_nothing_is_lost(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(4)
    backend = DependencyDown()
    backend.down.set()
    first = worker_settings(**names, **OUTAGE, worker_id="first", rebalance_timeout_ms=20_000)
    second = worker_settings(
        **names, **OUTAGE, group_id=first.group_id, worker_id="second", rebalance_timeout_ms=20_000
    )
    await produce(kafka_bootstrap, names["input_topic"], _inputs(range(80)))
    with capture_logs() as logs:
        async with running_worker(first, backend) as holding:
            body = await wait_status(holding.health_port, "/readyz", 503, 20)
            assert any(r.startswith("backend failing") for r in body["reasons"]), body
            async with running_worker(second, backend) as joining:
                await wait_for(
                    lambda: (
                        len(holding.assigned) + len(joining.assigned) == 4
                        and len(joining.assigned) > 0
                    ),
                    40,
                    "the rebalance to complete while a batch is held",
                )
                backend.down.clear()
                outputs = await consume(
                    kafka_bootstrap, names["output_topic"], 80, within=40, settle=1.0
                )
    letters = await consume(kafka_bootstrap, names["dlq_topic"], 0, settle=0.5)
    assert _ids(outputs) == list(range(80))  # each once: the held batch was never published
    assert letters == []
    revoked = [e for e in logs if e["event"] == "partitions_revoked" and e["partitions"]]
    assert revoked, "the holding worker should have handed partitions over"
    assert all(e["drained"] for e in revoked)  # it let the batch go, not the drain time out

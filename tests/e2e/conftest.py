"""Helpers for the worker's end-to-end tests against the real broker (``kafka_bootstrap``).

* ``worker_settings(**overrides)`` builds :class:`WorkerSettings` for fresh topics.
* ``running_worker(settings, backend)`` runs a :class:`Worker` in-process as a task and stops
  it (drain, commit, close) on exit.
* ``produce`` / ``consume`` talk to the broker directly; ``consume`` waits with a deadline.
* Test backends: ``Identity``, ``Poison`` (rejects records with ``"poison": true``),
  ``Slow`` (sleeps in ``execute``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from packflow import InferenceBackend
from worker.app import Worker
from worker.settings import WorkerSettings

Message = tuple[bytes | None, bytes | None]  # key, value


class Identity(InferenceBackend):
    """Echoes each record with ``"seen": True`` added."""

    def execute(self, inputs: Any) -> Any:
        return [dict(record, seen=True) for record in inputs]


class Poison(InferenceBackend):
    """Fails the whole call when any record has ``"poison": true``."""

    def execute(self, inputs: Any) -> Any:
        for record in inputs:
            if record.get("poison"):
                raise ValueError(f"poison record id={record.get('id')}")
        return [dict(record, seen=True) for record in inputs]


class Slow(InferenceBackend):
    """Sleeps ``sleep_s`` in ``execute`` on the first call (or every call with ``always``)."""

    sleep_s = 0.0
    always = False

    def initialize(self) -> None:
        self.started = threading.Event()
        self.calls = 0

    def execute(self, inputs: Any) -> Any:
        self.calls += 1
        if self.always or self.calls == 1:
            self.started.set()
            time.sleep(self.sleep_s)
        return [dict(record, seen=True) for record in inputs]


@pytest.fixture
def worker_settings(kafka_bootstrap: str) -> Callable[..., WorkerSettings]:
    """Builds settings on the session broker; topics must be passed in."""

    def build(**overrides: Any) -> WorkerSettings:
        values: dict[str, Any] = {
            "bootstrap_servers": kafka_bootstrap,
            "group_id": f"g-{uuid.uuid4().hex[:12]}",
            "backend": "tests:Identity",
            "health_port": 0,
            "max_batch_wait_ms": 20,
            "shutdown_timeout_seconds": 20,
            "worker_id": "test-worker",
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500,
        }
        values.update(overrides)
        return WorkerSettings(**values)

    return build


@pytest.fixture
async def topics(
    create_topic: Callable[..., Awaitable[str]],
) -> Callable[..., Awaitable[dict[str, str]]]:
    """``await topics(partitions=1, metrics=False)`` -> names for input/output/dlq(/metrics).

    ``output_config`` / ``dlq_config`` are topic configs for the output / dead-letter topic.
    """

    async def make(
        partitions: int = 1,
        *,
        output_partitions: int | None = None,
        metrics: bool = False,
        output_config: dict[str, str] | None = None,
        dlq_config: dict[str, str] | None = None,
    ) -> dict[str, str]:
        names = {
            "input_topic": await create_topic(partitions, prefix="in"),
            "output_topic": await create_topic(
                output_partitions or partitions, prefix="out", config=output_config
            ),
            "dlq_topic": await create_topic(1, prefix="dlq", config=dlq_config),
        }
        if metrics:
            names["metrics_topic"] = await create_topic(1, prefix="metrics")
        return names

    return make


@contextlib.asynccontextmanager
async def running_worker(
    settings: WorkerSettings, backend: Any, *, start_timeout: float = 60.0, **options: Any
) -> AsyncIterator[Worker]:
    """Run a worker as a task; on exit request a stop and wait for a clean exit code.

    ``options`` go to :class:`Worker` (e.g. ``tracer_provider``)."""
    worker = Worker(settings, backend, **options)
    task = asyncio.create_task(worker.run())
    started = asyncio.create_task(worker.started.wait())
    done, _ = await asyncio.wait(
        {task, started}, timeout=start_timeout, return_when=asyncio.FIRST_COMPLETED
    )
    if task in done:
        started.cancel()
        task.result()
        raise AssertionError("worker exited during start-up")
    if started not in done:
        task.cancel()
        raise AssertionError(f"worker did not start within {start_timeout}s")
    try:
        yield worker
    finally:
        worker.request_stop()
        code = await asyncio.wait_for(task, settings.shutdown_timeout_seconds + 15)
    assert code == 0, f"worker exited with {code}"


def get_json(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """``GET http://127.0.0.1:<port><path>``: the status and the JSON body (also for 4xx/5xx)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


async def wait_status(
    port: int, path: str, want: int, within: float, reason: str = ""
) -> dict[str, Any]:
    """Poll ``path`` until it answers ``want`` (with a reason starting with ``reason``, if
    given); fail after ``within`` seconds. Returns the body."""
    deadline = time.monotonic() + within
    while True:
        status, body = await asyncio.to_thread(get_json, port, path)
        reasons = body.get("reasons", [])
        if status == want and (not reason or any(r.startswith(reason) for r in reasons)):
            return body
        assert time.monotonic() < deadline, f"{path} stayed {status}: {body}"
        await asyncio.sleep(0.1)


async def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``predicate`` until true, failing after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.05)


async def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[Message],
    *,
    headers: list[tuple[str, bytes]] | None = None,
    partition: int | None = None,
) -> None:
    """Send ``(key, value)`` messages and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=headers, partition=partition)
            for key, value in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    within: float = 60.0,
    settle: float = 0.0,
    isolation_level: str = "read_uncommitted",
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``count`` messages arrived (deadline ``within`` s).

    With ``settle`` > 0, keep reading that many more seconds to catch any extra message.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        found: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + within
        while len(found) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(records)
        if settle > 0:
            end = time.monotonic() + settle
            while time.monotonic() < end:
                batch = await consumer.getmany(timeout_ms=100)
                for records in batch.values():
                    found.extend(records)
        return found
    finally:
        await consumer.stop()


async def committed(
    bootstrap: str, group: str, topic: str, partitions: int
) -> dict[int, int | None]:
    """The committed offsets of ``group`` on ``topic``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await consumer.stop()

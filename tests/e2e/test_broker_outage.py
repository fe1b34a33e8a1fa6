"""A broker outage: /readyz turns unready with the reason and back, the log stays readable.

One at-least-once and one exactly-once worker process run on a broker of the test's own,
which is stopped for longer than ``--readiness-stall-seconds`` and started again.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from kafka_local import LocalKafka  # on sys.path through tests/conftest.py

from tests.e2e._process import BACKEND, WorkerProcess, worker_env
from tests.e2e.conftest import consume, produce, wait_for, wait_status

pytestmark = pytest.mark.kafka

STALL_SECONDS = 3


def _port(process: WorkerProcess) -> int:
    return int(process.named("health_listening")[0]["health_port"])


async def test_an_unreachable_broker_turns_both_modes_unready_and_ready_again(
    tmp_path, create_topic_on
):
    broker = LocalKafka(tmp_path / "broker")
    bootstrap = await asyncio.to_thread(broker.start)
    (tmp_path / "pipe.py").write_text(BACKEND)
    workers: dict[str, WorkerProcess] = {}
    outputs_of: dict[str, str] = {}
    try:
        input_topic = await create_topic_on(bootstrap, 2, prefix="in")
        for mode in ("at-least-once", "exactly-once"):
            names = {
                "input_topic": input_topic,
                "output_topic": await create_topic_on(bootstrap, 2, prefix="out"),
                "dlq_topic": await create_topic_on(bootstrap, 1, prefix="dlq"),
            }
            env = worker_env(
                bootstrap,
                names,
                "pipe:Backend",
                delivery=mode,
                readiness_stall_seconds=str(STALL_SECONDS),
                session_timeout_ms="30000",
                heartbeat_interval_ms="1000",
            )
            workers[mode] = WorkerProcess(tmp_path, env)
            outputs_of[mode] = names["output_topic"]
            await workers[mode].start()
        for process in workers.values():
            await wait_for(lambda p=process: bool(p.named("health_listening")), 60, "the port")
            events = [e["event"] for e in process.events] + ["partitions_assigned"]
            assert events.index("health_listening") < events.index("partitions_assigned"), events
            await wait_status(_port(process), "/readyz", 200, 60)
        await produce(bootstrap, input_topic, [(b"k", orjson.dumps({"id": i})) for i in range(10)])
        for process in workers.values():
            await wait_for(lambda p=process: len(p.named("batch_metrics")) >= 1, 60, "a batch")

        # Taken before the stop: a worker may notice the broker going away while it shuts down.
        outage_started = {mode: len(p.events) for mode, p in workers.items()}
        await asyncio.to_thread(broker.stop)
        for process in workers.values():
            unready = "Kafka unreachable for "
            await wait_status(_port(process), "/readyz", 503, STALL_SECONDS + 30, unready)
        restarted = await asyncio.to_thread(broker.start)
        assert restarted == bootstrap, "the broker came back on another port"
        for mode, process in workers.items():
            await wait_status(_port(process), "/readyz", 200, 60)
            during = process.events[outage_started[mode] :]
            names = [e["event"] for e in during]
            changes = [e for e in during if e["event"] in ("kafka_unreachable", "kafka_reachable")]
            assert names.count("kafka_unreachable") == 1, (mode, changes)
            back = [e for e in during if e["event"] == "kafka_reachable"]
            assert len(back) == 1, (mode, changes)
            assert back[0]["unreachable_s"] >= STALL_SECONDS
            library = [e for e in during if e["event"] == "library_log"]
            # Unlimited, aiokafka logs about 95 lines a second here; one per kind per 10 s now.
            assert len(library) <= 30, (mode, len(library), library[:5])

        await produce(
            bootstrap, input_topic, [(b"k", orjson.dumps({"id": 100 + i})) for i in range(5)]
        )
        for topic in outputs_of.values():
            outputs = await consume(
                bootstrap,
                topic,
                15,
                within=60,
                isolation_level="read_committed",
            )
            assert {orjson.loads(o.value)["id"] for o in outputs} >= {100, 101, 102, 103, 104}
    finally:
        codes = {mode: await p.stop() for mode, p in workers.items()}
        if broker.is_running():
            await asyncio.to_thread(broker.stop)
    assert codes == {"at-least-once": 0, "exactly-once": 0}, codes

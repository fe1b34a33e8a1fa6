"""A broker restart mid-stream loses nothing (at-least-once: duplicates allowed)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from kafka_local import LocalKafka  # on sys.path through tests/conftest.py

from tests.e2e.conftest import Slow, consume, produce, running_worker, wait_for

pytestmark = pytest.mark.kafka


async def test_a_broker_restart_mid_stream_loses_no_message(
    tmp_path, worker_settings, create_topic_on
):
    broker = LocalKafka(tmp_path / "broker")
    bootstrap = await asyncio.to_thread(broker.start)
    try:
        names = {
            name: await create_topic_on(bootstrap, 2, prefix=prefix)
            for name, prefix in (
                ("input_topic", "in"),
                ("output_topic", "out"),
                ("dlq_topic", "dlq"),
            )
        }
        total = 5000
        await produce(
            bootstrap,
            names["input_topic"],
            [(f"k{i}".encode(), orjson.dumps({"id": i})) for i in range(total)],
        )
        backend = Slow()
        backend.sleep_s = 0.05
        backend.always = True
        settings = worker_settings(**names, bootstrap_servers=bootstrap, max_batch_size=50)
        async with running_worker(settings, backend) as worker:
            await wait_for(lambda: worker.batches >= 5, 30, "a few batches")
            await asyncio.to_thread(broker.stop)
            done_while_up = sum(m["batch_size"] for m in worker.recent_metrics)
            restarted = await asyncio.to_thread(broker.start)
            assert done_while_up < total, "the restart did not land mid-stream"
            assert restarted == bootstrap, "the broker came back on another port"
            outputs = await consume(bootstrap, names["output_topic"], total, within=120)
            await wait_for(lambda: worker.budget.empty, 60, "the last acknowledgements")
        ids = {orjson.loads(o.value)["id"] for o in outputs}
        assert ids == set(range(total))
    finally:
        await asyncio.to_thread(broker.stop)

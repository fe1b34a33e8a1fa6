"""Client settings against the real broker: compression, static membership, request size."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.e2e.conftest import Poison, consume, produce, running_worker, wait_for
from worker.app import Worker

pytestmark = pytest.mark.kafka


class Pads(Poison):
    """Adds a ``blob`` of ``pad`` characters to each output."""

    def execute(self, inputs):
        return [dict(r, blob="x" * r.get("pad", 0)) for r in inputs]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_each_compression_codec_round_trips_through_the_broker(
    kafka_bootstrap, topics, worker_settings, codec
):
    names = await topics()
    values = [orjson.dumps({"id": i, "pad": 300}) for i in range(20)]
    await produce(kafka_bootstrap, names["input_topic"], [(b"k", v) for v in values])
    settings = worker_settings(**names, compression_type=codec)
    async with running_worker(settings, Pads()) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], 20, within=30)
        producer = worker._pipeline.publisher._producer if worker._pipeline else None
        assert producer is not None
        assert producer._compression_type == codec
    assert [orjson.loads(o.value) for o in outputs] == [
        {"id": i, "pad": 300, "blob": "x" * 300} for i in range(20)
    ]


async def test_an_output_over_the_max_request_size_is_a_dead_letter_naming_the_setting(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(output_config={"max.message.bytes": str(4 * 1024 * 1024)})
    values = [orjson.dumps({"id": i, "pad": pad}) for i, pad in enumerate([10, 5000, 10])]
    await produce(kafka_bootstrap, names["input_topic"], [(b"k", v) for v in values])
    settings = worker_settings(**names, max_request_size=4096)
    async with running_worker(settings, Pads()):
        outputs = await consume(kafka_bootstrap, names["output_topic"], 2, within=30)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 1, within=30, settle=0.5)
    assert [orjson.loads(o.value)["id"] for o in outputs] == [0, 2]
    (letter,) = [orjson.loads(x.value) for x in letters]
    assert letter["error"]["type"] == "MessageSizeTooLargeError"
    assert "over --max-request-size 4,096" in letter["error"]["message"]


async def test_a_static_member_restarted_within_the_session_timeout_causes_no_rebalance(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(4)
    group = worker_settings(**names).group_id
    common = {**names, "group_id": group, "session_timeout_ms": 20_000}
    stays = worker_settings(**common, group_instance_id="stays", worker_id="stays")
    restarts = worker_settings(**common, group_instance_id="restarts", worker_id="restarts")
    async with running_worker(stays, Poison()) as steady:
        first = Worker(restarts, Poison())
        task = asyncio.create_task(first.run())
        await wait_for(
            lambda: len(first.assigned) > 0 and len(steady.assigned) > 0,
            60,
            "both members to own partitions",
        )
        await wait_for(
            lambda: len(first.assigned) + len(steady.assigned) == 4,
            30,
            "all four partitions assigned",
        )
        owned, steady_owned = set(first.assigned), set(steady.assigned)
        assignments = steady.assignments
        first.request_stop()
        assert await asyncio.wait_for(task, 40) == 0

        async with running_worker(restarts, Poison()) as second:
            await wait_for(
                lambda: len(second.assigned) > 0, 30, "the restarted member's partitions"
            )
            assert set(second.assigned) == owned
            await produce(
                kafka_bootstrap,
                names["input_topic"],
                [(str(i).encode(), orjson.dumps({"id": i})) for i in range(40)],
            )
            await consume(kafka_bootstrap, names["output_topic"], 40, within=30)
            assert set(steady.assigned) == steady_owned
            assert steady.assignments == assignments  # it never saw a rebalance

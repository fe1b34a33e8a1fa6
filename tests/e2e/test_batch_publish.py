"""Outputs go out with aiokafka's batch API: order, keys and headers around dead letters.

Batches under a small ``max.message.bytes`` are in test_topic_limits.py; the per-message
fallback after a failed batch is unit-tested in tests/worker/test_publisher.py.
"""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest

from tests.e2e.conftest import Poison, consume, produce, running_worker

pytestmark = pytest.mark.kafka


async def test_outputs_of_a_batch_keep_input_order_keys_and_headers_around_dead_letters(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(4, output_partitions=2)
    per_partition = 150
    expected: dict[int, list[int]] = {}
    for partition in range(4):
        ids = [partition * 1000 + i for i in range(per_partition)]
        messages = [
            (f"key-{i}".encode(), orjson.dumps({"id": i, "poison": i % 17 == 3})) for i in ids
        ]
        await produce(
            kafka_bootstrap,
            names["input_topic"],
            messages,
            headers=[("h", f"p{partition}".encode())],
            partition=partition,
        )
        expected[partition] = [i for i in ids if i % 17 != 3]
    poisoned = 4 * per_partition - sum(len(ids) for ids in expected.values())

    async with running_worker(worker_settings(**names), Poison()) as worker:
        outputs = await consume(
            kafka_bootstrap, names["output_topic"], 4 * per_partition - poisoned
        )
        letters = await consume(kafka_bootstrap, names["dlq_topic"], poisoned, settle=0.5)
        publisher = worker._pipeline.publisher
        assert publisher is not None

    seen: dict[int, list[int]] = defaultdict(list)
    for out in outputs:
        headers = dict(out.headers)
        topic, partition, offset = headers["packflow-source"].decode().rsplit("/", 2)
        body = orjson.loads(out.value)
        assert topic == names["input_topic"]
        assert int(offset) == body["id"] - int(partition) * 1000
        assert out.partition == int(partition) % 2
        assert out.key == f"key-{body['id']}".encode()
        assert headers["h"] == f"p{partition}".encode()
        assert body["seen"] is True
        seen[int(partition)].append(body["id"])
    assert seen == expected  # consume() reads each output partition in order
    assert len(letters) == poisoned
    assert {orjson.loads(x.value)["error"]["step"] for x in letters} == {"execute"}
    assert 2 <= publisher.batches_sent <= len(outputs) // 10
    assert publisher.batch_fallbacks == 0

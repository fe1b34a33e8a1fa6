"""Outputs go out with aiokafka's batch API: order, keys, headers, and per-message fallback."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest
from structlog.testing import capture_logs

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
        publisher = worker._publisher
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


class Pads(Poison):
    """Adds a ``blob`` of ``pad`` characters to each output."""

    def execute(self, inputs):
        return [dict(r, blob="x" * r.get("pad", 0)) for r in inputs]


async def test_a_batch_the_broker_refuses_is_sent_again_message_by_message(
    kafka_bootstrap, create_topic, worker_settings
):
    names = {
        "input_topic": await create_topic(1, prefix="in"),
        "output_topic": await create_topic(1, prefix="out", config={"max.message.bytes": "3000"}),
        "dlq_topic": await create_topic(1, prefix="dlq"),
    }
    # Together over the topic's 3,000-byte limit, each alone under it. (None is refused
    # alone: after a broker-side refusal, aiokafka 0.14's idempotent producer keeps the
    # refused batch's sequence numbers and later sends to the partition fail for good.)
    pads = [0, 2000, 2000, 0]
    values = [orjson.dumps({"id": i, "pad": pad}) for i, pad in enumerate(pads)]
    await produce(kafka_bootstrap, names["input_topic"], [(b"k", v) for v in values])
    with capture_logs() as logs:
        async with running_worker(worker_settings(**names), Pads()) as worker:
            outputs = await consume(kafka_bootstrap, names["output_topic"], 4)
            letters = await consume(kafka_bootstrap, names["dlq_topic"], 0, settle=0.5)
            publisher = worker._publisher
            assert publisher is not None
    assert [orjson.loads(o.value)["id"] for o in outputs] == [0, 1, 2, 3]
    assert [o.offset for o in outputs] == [0, 1, 2, 3]
    assert letters == []
    (batch,) = worker.recent_metrics
    assert (batch["batch_size"], batch["outputs"], batch["dead_letters"]) == (4, 4, 0)
    assert publisher.batches_sent == 1
    assert publisher.batch_fallbacks == 4
    assert publisher.publish_retries == 0
    (failed,) = [e for e in logs if e["event"] == "publish_batch_failed"]
    assert failed["messages"] == 4
    assert "MessageSizeTooLargeError" in failed["error"]

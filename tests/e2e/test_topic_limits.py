"""The output and dead-letter topics' limits, read at start-up, keep broker refusals away.

After the broker refuses a batch for good, aiokafka 0.14's idempotent producer fails every
later send to that partition: the worker must never send what the broker would refuse.
"""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.e2e.conftest import Poison, committed, consume, produce, running_worker, wait_for
from worker._kafka import topic_limits
from worker.clients import KafkaClients
from worker.errors import StartupError
from worker.pipeline import SOURCE_HEADER, one_message_batch_bytes

pytestmark = pytest.mark.kafka

LIMIT = 3000


class Pads(Poison):
    """Adds a ``blob`` of ``pad`` characters to each output."""

    def execute(self, inputs):
        return [dict(r, blob="x" * r.get("pad", 0)) for r in inputs]


def padded(topic: str, offset: int, key: bytes, size: int) -> bytes:
    """The input value whose output (from ``Pads``) is exactly ``size`` bytes as a batch."""
    headers = [(SOURCE_HEADER, f"{topic}/0/{offset}".encode())]
    for pad in range(size):
        output = orjson.dumps({"id": offset, "pad": pad, "blob": "x" * pad})
        if one_message_batch_bytes(key, output, headers) == size:
            return orjson.dumps({"id": offset, "pad": pad})
    raise AssertionError(f"no pad gives {size} bytes")


async def test_outputs_under_the_limit_that_together_exceed_it_publish_in_order_without_fallback(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(output_config={"max.message.bytes": str(LIMIT)})
    pads = [0, 2000, 2000, 0, 1000, 1000]
    values = [orjson.dumps({"id": i, "pad": pad}) for i, pad in enumerate(pads)]
    await produce(kafka_bootstrap, names["input_topic"], [(b"k", v) for v in values])
    async with running_worker(worker_settings(**names), Pads()) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], len(pads), within=30)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 0, settle=0.5)
        publisher = worker._pipeline.publisher
        assert publisher is not None
    assert [orjson.loads(o.value)["id"] for o in outputs] == list(range(len(pads)))
    assert [o.offset for o in outputs] == list(range(len(pads)))
    assert letters == []
    (batch,) = worker.recent_metrics
    assert (batch["batch_size"], batch["outputs"], batch["dead_letters"]) == (6, 6, 0)
    assert publisher.batches_sent >= 3  # no builder grew past the topic's 3,000 bytes
    assert publisher.batch_fallbacks == publisher.publish_retries == 0


async def test_an_output_over_the_limit_is_one_dead_letter_and_the_partition_goes_on(
    kafka_bootstrap, topics, worker_settings
):
    limit = {"max.message.bytes": str(LIMIT)}
    names = await topics(output_config=limit, dlq_config=limit)
    topic = names["input_topic"]
    values = [
        orjson.dumps({"id": 0}),
        padded(topic, 1, b"k", LIMIT),  # the largest output that fits
        padded(topic, 2, b"k", LIMIT + 1),
        orjson.dumps({"id": 3}),
        orjson.dumps({"id": 4, "junk": "y" * LIMIT}),  # its dead letter is over the limit too
        orjson.dumps({"id": 5}),
    ]
    await produce(kafka_bootstrap, topic, [(b"k", v) for v in values])
    settings = worker_settings(**names)
    async with running_worker(settings, Pads()) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], 4, within=30)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 2, within=30, settle=0.5)
        await wait_for(lambda: worker.budget.empty, 20, "the batch to settle")
        publisher = worker._pipeline.publisher
        assert publisher is not None
    assert [orjson.loads(o.value)["id"] for o in outputs] == [0, 1, 3, 5]
    assert len(outputs[1].value) > LIMIT - 200
    assert await committed(kafka_bootstrap, settings.group_id, topic, 1) == {0: 6}
    first, second = (orjson.loads(x.value) for x in letters)
    assert first["error"]["step"] == "publish"
    assert first["error"]["type"] == "MessageSizeTooLargeError"
    assert first["error"]["message"] == (
        f"output of {topic}/0@2 is 3,001 bytes as a record batch, over max.message.bytes "
        f"3,000 of topic {names['output_topic']!r}"
    )
    assert base64.b64decode(first["value"]) == values[2]
    assert second["source"]["offset"] == 4
    assert second["error"]["step"] == "publish"
    assert second["value"] is None
    assert "too large" in second["value_omitted"]
    assert publisher.batch_fallbacks == publisher.publish_retries == 0
    counts = [(m["outputs"], m["records_out"], m["dead_letters"]) for m in worker.recent_metrics]
    assert tuple(map(sum, zip(*counts, strict=True))) == (4, 4, 2)


async def test_a_keyless_message_on_a_compacted_output_topic_is_a_dead_letter(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(output_config={"cleanup.policy": "compact"})
    keys = [b"a", None, b"c"]
    values = [orjson.dumps({"id": i}) for i in range(3)]
    await produce(kafka_bootstrap, names["input_topic"], list(zip(keys, values, strict=True)))
    async with running_worker(worker_settings(**names), Pads()) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], 2, within=30)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 1, within=30, settle=0.5)
        publisher = worker._pipeline.publisher
        assert publisher is not None
    assert [(o.key, orjson.loads(o.value)["id"]) for o in outputs] == [(b"a", 0), (b"c", 2)]
    (letter,) = [orjson.loads(x.value) for x in letters]
    assert letter["source"]["offset"] == 1
    assert letter["error"]["step"] == "publish"
    assert letter["error"]["type"] == "InvalidRecordError"
    assert "has no key" in letter["error"]["message"]
    assert f"topic {names['output_topic']!r} is compacted" in letter["error"]["message"]
    assert publisher.batch_fallbacks == publisher.publish_retries == 0


async def test_exactly_once_an_output_over_the_limit_is_a_dead_letter_without_an_abort(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(output_config={"max.message.bytes": str(LIMIT)})
    topic = names["input_topic"]
    values = [orjson.dumps({"id": 0}), padded(topic, 1, b"k", LIMIT + 1), orjson.dumps({"id": 2})]
    await produce(kafka_bootstrap, topic, [(b"k", v) for v in values])
    settings = worker_settings(**names, delivery="exactly-once")
    async with running_worker(settings, Pads()) as worker:
        outputs = await consume(
            kafka_bootstrap, names["output_topic"], 2, within=30, isolation_level="read_committed"
        )
        letters = await consume(
            kafka_bootstrap, names["dlq_topic"], 1, within=30, isolation_level="read_committed"
        )
        await wait_for(lambda: worker.budget.empty and worker.batches >= 1, 20, "the batch")
        txn = worker.delivery.transactions
        assert txn is not None
    assert [orjson.loads(o.value)["id"] for o in outputs] == [0, 2]
    (letter,) = [orjson.loads(x.value) for x in letters]
    assert letter["source"]["offset"] == 1
    assert (
        "is 3,001 bytes as a record batch, over max.message.bytes 3,000"
        in (letter["error"]["message"])
    )
    assert await committed(kafka_bootstrap, settings.group_id, topic, 1) == {0: 3}
    assert txn.aborts == 0


async def test_the_limits_are_read_at_start_up_and_a_missing_topic_is_a_startup_error(
    topics, worker_settings
):
    config = {"max.message.bytes": str(LIMIT), "cleanup.policy": "compact,delete"}
    names = await topics(output_config=config)
    limits = await topic_limits(KafkaClients(worker_settings(**names)), 10)
    assert (limits.output_max_message_bytes, limits.output_compacted) == (LIMIT, True)
    assert limits.dlq_max_message_bytes > 1_000_000  # the broker's default
    assert limits.batch_bytes == LIMIT
    missing = dict(names, output_topic="no-such-topic-for-limits")
    with pytest.raises(StartupError) as caught:
        await topic_limits(KafkaClients(worker_settings(**missing)), 5)
    assert str(caught.value).startswith(
        "topic 'no-such-topic-for-limits' is not available: UnknownTopicOrPartitionError"
    )
    compacted_dlq = await topics(dlq_config={"cleanup.policy": "compact"})
    with pytest.raises(StartupError) as caught:
        await topic_limits(KafkaClients(worker_settings(**compacted_dlq)), 10)
    assert str(caught.value) == (
        f"dead-letter topic {compacted_dlq['dlq_topic']!r} is compacted (cleanup.policy "
        "'compact'): compaction would drop dead letters that share a key, and the broker "
        "refuses those of keyless messages; use cleanup.policy=delete"
    )


async def test_dead_letters_under_the_dlq_limit_that_together_exceed_it_all_arrive(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(dlq_config={"max.message.bytes": str(LIMIT)})
    values = [orjson.dumps({"id": i, "poison": i % 2 == 1, "junk": "y" * 900}) for i in range(8)]
    await produce(kafka_bootstrap, names["input_topic"], [(b"k", v) for v in values])
    settings = worker_settings(**names)
    async with running_worker(settings, Poison()) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], 4, within=30)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 4, within=30, settle=0.5)
        await wait_for(lambda: worker.budget.empty, 20, "the batch to settle")
        publisher = worker._pipeline.publisher
        assert publisher is not None
    assert [orjson.loads(o.value)["id"] for o in outputs] == [0, 2, 4, 6]
    bodies = [orjson.loads(x.value) for x in letters]
    assert [b["source"]["offset"] for b in bodies] == [1, 3, 5, 7]
    assert [b["value"] and base64.b64decode(b["value"]) for b in bodies] == values[1::2]
    assert await committed(kafka_bootstrap, settings.group_id, names["input_topic"], 1) == {0: 8}
    assert publisher.publish_retries == 0

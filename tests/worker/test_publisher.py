"""Publisher: headers, output partition, and what settling does with each kind of failure.

A stand-in producer (an object with ``send``) returns prepared futures: this tests the
publisher's own decisions, not Kafka (the e2e tests do that against the real broker).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord

from worker.codec import DeadLetter
from worker.publisher import Publisher


class ScriptedProducer:
    """``send`` resolves each future with the next scripted outcome (None = acknowledged)."""

    def __init__(self, *outcomes: BaseException | None) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[dict[str, Any]] = []

    async def send(self, topic, value, key=None, partition=None, headers=None):
        self.sent.append(
            {"topic": topic, "value": value, "key": key, "partition": partition, "headers": headers}
        )
        future = asyncio.get_running_loop().create_future()
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is None:
            future.set_result("ack")
        else:
            future.set_exception(outcome)
        return future


def make(producer: ScriptedProducer, partitions: int = 2) -> Publisher:
    return Publisher(
        producer,  # type: ignore[arg-type]
        output_topic="out",
        output_partitions=partitions,
        dlq_topic="dlq",
        metrics_topic=None,
        worker_id="w",
        backend="B",
        logger=structlog.get_logger("test"),
    )


RECORD = ConsumerRecord(
    "in",
    5,
    42,
    1000,
    0,
    b"key",
    b'{"a": 1}',
    None,
    3,
    8,
    (("trace", b"t"), ("packflow-source", b"old")),
)
TP = TopicPartition("in", 5)


async def test_outputs_keep_key_and_headers_replace_the_source_and_map_the_partition():
    producer = ScriptedProducer()
    delivery = await make(producer, partitions=3).send_output(RECORD, TP, 0, b"{}")
    await delivery.future
    (sent,) = producer.sent
    assert sent["key"] == b"key"
    assert sent["partition"] == 5 % 3
    assert sent["headers"] == [("trace", b"t"), ("packflow-source", b"in/5/42")]


async def test_a_retriable_failure_is_retried_until_acknowledged():
    producer = ScriptedProducer(KafkaTimeoutError(), KafkaTimeoutError(), None)
    publisher = make(producer)
    delivery = await publisher.settle(await publisher.send_output(RECORD, TP, 0, b"{}"))
    assert not delivery.is_dead_letter
    assert [s["topic"] for s in producer.sent] == ["out", "out", "out"]
    assert publisher.publish_retries == 2


async def test_an_output_refused_for_good_becomes_a_publish_dead_letter():
    producer = ScriptedProducer(MessageSizeTooLargeError(), None)
    publisher = make(producer)
    delivery = await publisher.settle(await publisher.send_output(RECORD, TP, 0, b"{}"))
    assert delivery.is_dead_letter
    assert [s["topic"] for s in producer.sent] == ["out", "dlq"]
    body = orjson.loads(producer.sent[1]["value"])
    assert body["error"]["step"] == "publish"
    assert body["error"]["type"] == "MessageSizeTooLargeError"
    assert body["source"] == {"topic": "in", "partition": 5, "offset": 42, "timestamp": 1000}


async def test_a_dead_letter_refused_for_good_is_resent_without_the_original_value():
    producer = ScriptedProducer(MessageSizeTooLargeError(), None)
    publisher = make(producer)
    letter = DeadLetter("ValueError", "boom", "execute", "in", 5, 42, 1000, b"x" * 10)
    delivery = await publisher.settle(await publisher.send_dead_letter(RECORD, TP, 0, letter))
    assert delivery.is_dead_letter
    first, second = (orjson.loads(s["value"]) for s in producer.sent)
    assert first["value"] is not None
    assert second["value"] is None
    assert "too large" in second["value_omitted"]
    assert second["error"] == first["error"]

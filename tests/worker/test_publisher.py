"""Publisher: headers, output partition, batching, and what settling does with each failure.

A stand-in producer (``send``, ``create_batch`` with aiokafka's own ``BatchBuilder``,
``send_batch``) returns prepared futures: this tests the publisher's own decisions, not Kafka
(the e2e tests do that against the real broker).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import structlog
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.structs import ConsumerRecord

from worker.codec import DeadLetter
from worker.limits import UNLIMITED, TopicLimits
from worker.pipeline import Message, source_of
from worker.publisher import Publisher


def _future(outcome: BaseException | None) -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    if outcome is None:
        future.set_result("ack")
    else:
        future.set_exception(outcome)
    return future


class ScriptedProducer:
    """``send`` / ``send_batch`` resolve futures with the next scripted outcome (None = ack).

    ``calls`` lists every send in order: ``("send", topic, partition, key)`` or
    ``("batch", topic, partition, [keys])``; ``batches`` the messages of each batch.
    """

    def __init__(
        self,
        *outcomes: BaseException | None,
        batch_outcomes: tuple[BaseException | None, ...] = (),
        batch_size: int = 16384,
    ) -> None:
        self.outcomes = list(outcomes)
        self.batch_outcomes = list(batch_outcomes)
        self.batch_size = batch_size
        self.sent: list[dict[str, Any]] = []
        self.batches: list[list[tuple[bytes | None, bytes | None, list[Any]]]] = []
        self.calls: list[tuple[Any, ...]] = []

    async def send(self, topic, value, key=None, partition=None, headers=None):
        self.sent.append(
            {"topic": topic, "value": value, "key": key, "partition": partition, "headers": headers}
        )
        self.calls.append(("send", topic, partition, key))
        return _future(self.outcomes.pop(0) if self.outcomes else None)

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, builder, topic, *, partition):
        assert builder.closed()
        records = [(r.key, r.value, r.headers) for r in DefaultRecordBatch(bytes(builder._build()))]
        self.batches.append(records)
        self.calls.append(("batch", topic, partition, [key for key, _, _ in records]))
        return _future(self.batch_outcomes.pop(0) if self.batch_outcomes else None)


def make(
    producer: ScriptedProducer,
    partitions: int = 2,
    max_batch_bytes: int | None = None,
    limits: TopicLimits = UNLIMITED,
) -> Publisher:
    return Publisher(
        producer,  # type: ignore[arg-type]
        output_topic="out",
        output_partitions=partitions,
        dlq_topic="dlq",
        metrics_topic=None,
        worker_id="w",
        backend="B",
        logger=structlog.get_logger("test"),
        limits=limits,
        max_batch_bytes=max_batch_bytes or producer.batch_size,
    )


def record(partition: int, offset: int, key: bytes | None = None) -> ConsumerRecord[bytes, bytes]:
    key = f"k{partition}-{offset}".encode() if key is None else key
    headers = (("trace", b"t"),)
    return ConsumerRecord("in", partition, offset, 1000, 0, key, b"{}", None, 3, 2, headers)


def output(rec: ConsumerRecord[bytes, bytes], value: bytes = b"{}") -> Message:
    return Message(rec, output=value, rows=1)


def letter(rec: ConsumerRecord[bytes, bytes]) -> Message:
    dead = DeadLetter("ValueError", "boom", "execute", "in", rec.partition, rec.offset, 1000, b"x")
    return Message(rec, letter=dead)


async def settle_all(publisher: Publisher, items: list[Message]) -> list[Any]:
    deliveries = (await publisher.send_outputs(items, {item.tp: 7 for item in items})).deliveries()
    assert [d.record for d in deliveries] == [item.record for item in items]
    assert {d.epoch for d in deliveries} == {7}
    return [await publisher.settle(d) for d in deliveries]


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


async def test_outputs_keep_key_and_headers_replace_the_source_and_map_the_partition():
    producer = ScriptedProducer()
    delivery = await make(producer, partitions=3).send_output(Message(RECORD), 0, b"{}")
    await delivery.future
    (sent,) = producer.sent
    assert sent["key"] == b"key"
    assert sent["partition"] == 5 % 3
    assert sent["headers"] == [("trace", b"t"), ("packflow-source", b"in/5/42")]
    assert source_of(sent["headers"]) == ("in", 5, 42)


def test_source_of_reads_the_header_among_others_and_is_none_without_it():
    assert source_of([("x", b"y"), ("packflow-source", b"events.v2/3/17")]) == ("events.v2", 3, 17)
    assert source_of([("trace", b"t")]) is None
    assert source_of(None) is None


async def test_a_retriable_failure_is_retried_until_acknowledged():
    producer = ScriptedProducer(KafkaTimeoutError(), KafkaTimeoutError(), None)
    publisher = make(producer)
    delivery = await publisher.settle(await publisher.send_output(Message(RECORD), 0, b"{}"))
    assert not delivery.is_dead_letter
    assert [s["topic"] for s in producer.sent] == ["out", "out", "out"]
    assert publisher.publish_retries == 2


async def test_an_output_refused_for_good_becomes_a_publish_dead_letter():
    producer = ScriptedProducer(MessageSizeTooLargeError(), None)
    publisher = make(producer)
    delivery = await publisher.settle(await publisher.send_output(Message(RECORD), 0, b"{}"))
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
    delivery = await publisher.settle(await publisher.send_dead_letter(Message(RECORD), 0, letter))
    assert delivery.is_dead_letter
    first, second = (orjson.loads(s["value"]) for s in producer.sent)
    assert first["value"] is not None
    assert second["value"] is None
    assert "too large" in second["value_omitted"]
    assert second["error"] == first["error"]


async def test_send_outputs_sends_one_batch_per_output_partition_in_input_order():
    producer = ScriptedProducer()
    publisher = make(producer, partitions=2)
    records = [record(p, o) for o in range(3) for p in (0, 1, 2)]  # 0 and 2 share output 0
    settled = await settle_all(publisher, [output(r, f"v{r.offset}".encode()) for r in records])
    assert not any(d.is_dead_letter for d in settled)
    assert sorted(producer.calls) == [
        ("batch", "out", 0, [b"k0-0", b"k2-0", b"k0-1", b"k2-1", b"k0-2", b"k2-2"]),
        ("batch", "out", 1, [b"k1-0", b"k1-1", b"k1-2"]),
    ]
    batch = next(b for b in producer.batches if len(b) == 3)
    assert batch[0] == (b"k1-0", b"v0", [("trace", b"t"), ("packflow-source", b"in/1/0")])
    assert publisher.batches_sent == 2
    assert publisher.batch_fallbacks == publisher.publish_retries == 0


async def test_a_full_builder_is_sent_and_the_next_message_starts_a_new_one():
    producer = ScriptedProducer(batch_size=400)
    publisher = make(producer)
    items = [output(record(0, o), b"x" * 100) for o in range(8)]
    await settle_all(publisher, items)
    assert [c[0] for c in producer.calls] == ["batch"] * len(producer.calls)
    assert len(producer.calls) >= 3
    assert [k for c in producer.calls for k in c[3]] == [f"k0-{o}".encode() for o in range(8)]


async def test_dead_letters_go_alone_while_outputs_around_them_share_a_batch():
    producer = ScriptedProducer()
    publisher = make(producer)
    r0, r1, r2 = record(0, 0), record(0, 1), record(0, 2)
    settled = await settle_all(publisher, [output(r0), letter(r1), output(r2)])
    assert [d.is_dead_letter for d in settled] == [False, True, False]
    assert producer.calls == [
        ("send", "dlq", None, b"k0-1"),
        ("batch", "out", 0, [b"k0-0", b"k0-2"]),
    ]


async def test_an_output_too_large_for_an_empty_builder_goes_alone_after_its_partition_batch():
    producer = ScriptedProducer(batch_size=1000)
    publisher = make(producer)
    items = [output(record(0, 0)), output(record(1, 0)), output(record(0, 1), b"x" * 2000)]
    items += [output(record(0, 2)), output(record(0, 3), b"y" * 2000)]
    settled = await settle_all(publisher, items)
    assert not any(d.is_dead_letter for d in settled)
    assert producer.calls == [
        ("batch", "out", 0, [b"k0-0"]),
        ("send", "out", 0, b"k0-1"),
        ("batch", "out", 0, [b"k0-2"]),
        ("send", "out", 0, b"k0-3"),
        ("batch", "out", 1, [b"k1-0"]),
    ]


async def test_a_failed_batch_sends_each_message_again_alone_and_only_the_refused_one_dies():
    refused = MessageSizeTooLargeError()
    producer = ScriptedProducer(None, refused, None, None, batch_outcomes=(refused,))
    publisher = make(producer)
    settled = await settle_all(publisher, [output(record(0, o)) for o in range(3)])
    assert [d.is_dead_letter for d in settled] == [False, True, False]
    assert producer.calls == [
        ("batch", "out", 0, [b"k0-0", b"k0-1", b"k0-2"]),
        ("send", "out", 0, b"k0-0"),
        ("send", "out", 0, b"k0-1"),
        ("send", "dlq", None, b"k0-1"),
        ("send", "out", 0, b"k0-2"),
    ]
    body = orjson.loads(producer.sent[2]["value"])
    assert body["error"]["step"] == "publish"
    assert body["source"]["offset"] == 1
    assert publisher.batch_fallbacks == 3
    assert publisher.publish_retries == 0


async def test_after_a_failed_batch_a_retriable_failure_is_retried_with_backoff():
    producer = ScriptedProducer(KafkaTimeoutError(), None, batch_outcomes=(KafkaTimeoutError(),))
    publisher = make(producer)
    (settled,) = await settle_all(publisher, [output(record(0, 0))])
    assert not settled.is_dead_letter
    assert [c[0] for c in producer.calls] == ["batch", "send", "send"]
    assert publisher.batch_fallbacks == 1
    assert publisher.publish_retries == 1


def test_aiokafka_builders_take_a_first_message_larger_than_the_batch_size():
    # send_outputs relies on this (aiokafka 0.14): the first append always succeeds, so a
    # message too large for any batch shows as an empty builder grown past the batch size.
    builder = BatchBuilder(1000, 0)
    assert builder.append(key=None, value=b"x" * 5000, timestamp=None, headers=[]) is not None
    assert builder.size() > 1000
    assert builder.append(key=None, value=b"x", timestamp=None, headers=[]) is None
    assert builder.record_count() == 1

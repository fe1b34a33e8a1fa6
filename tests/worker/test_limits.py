"""The size and key decisions made before sending, from the topics' limits (no broker).

The e2e tests (tests/e2e/test_topic_limits.py) check the same sizes at the broker's boundary.
"""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from tests.worker.test_publisher import ScriptedProducer, letter, make, output, record
from worker.clients import MAX_BATCH_BYTES
from worker.codec import DeadLetter, encode_dead_letter
from worker.limits import UNLIMITED, TopicLimits
from worker.pipeline import (
    HEADROOM,
    Message,
    fit_dead_letter,
    one_message_batch_bytes,
    output_headers,
    vet_outputs,
)
from worker.pipeline import refusal_letter as output_refusal

blobs = st.one_of(st.none(), st.binary(max_size=20000))
headers = st.lists(st.tuples(st.text(max_size=200), st.binary(max_size=300)), max_size=4)


@given(key=blobs, value=blobs, headers=headers)
def test_the_one_message_batch_size_is_what_aiokafkas_builder_measures(key, value, headers):
    builder = BatchBuilder(MAX_BATCH_BYTES, 0)
    assert builder.append(key=key, value=value, timestamp=None, headers=headers) is not None
    assert one_message_batch_bytes(key, value, headers) == builder.size()
    builder.close()
    assert len(builder._build()) == builder.size()


def test_the_batch_size_is_the_smallest_topic_limit_when_under_the_default():
    assert TopicLimits(3000, 100_000).batch_bytes == 3000
    assert TopicLimits(3000, 1000).batch_bytes == 1000
    assert TopicLimits(10 * MAX_BATCH_BYTES, 10 * MAX_BATCH_BYTES).batch_bytes == MAX_BATCH_BYTES
    assert UNLIMITED.batch_bytes == MAX_BATCH_BYTES


def sized(size: int, rec=None) -> tuple[bytes, list[tuple[str, bytes]]]:
    """An output value whose one-message batch is exactly ``size`` bytes for ``rec``."""
    rec = rec or record(0, 5)
    hdrs = [("trace", b"t"), ("packflow-source", f"in/{rec.partition}/{rec.offset}".encode())]
    base = one_message_batch_bytes(rec.key, b"", hdrs)
    for n in range(size):
        if one_message_batch_bytes(rec.key, b"x" * n, hdrs) == size:
            return b"x" * n, hdrs
    raise AssertionError(f"no value gives {size} bytes (empty: {base})")


def test_an_output_at_the_limit_passes_and_one_byte_over_is_refused_naming_size_and_limit():
    limits = TopicLimits(3000, 3000)
    rec = record(0, 5)
    fits, hdrs = sized(3000, rec)
    assert output_refusal(rec, fits, hdrs, limits, "out") is None
    over, hdrs = sized(3001, rec)
    letter = output_refusal(rec, over, hdrs, limits, "out")
    assert letter is not None
    assert (letter.step, letter.error_type, letter.offset) == (
        "publish",
        "MessageSizeTooLargeError",
        5,
    )
    assert letter.message == (
        "output of in/0@5 is 3,001 bytes as a record batch, "
        "over max.message.bytes 3,000 of topic 'out'"
    )
    assert letter.value == rec.value


def test_a_keyless_output_is_refused_only_on_a_compacted_topic():
    keyless = dataclasses.replace(record(0, 7), key=None)
    hdrs = [("packflow-source", b"in/0/7")]
    assert output_refusal(keyless, b"{}", hdrs, TopicLimits(3000, 3000), "out") is None
    compacted = TopicLimits(3000, 3000, output_compacted=True)
    assert output_refusal(record(0, 7), b"{}", hdrs, compacted, "out") is None
    letter = output_refusal(keyless, b"{}", hdrs, compacted, "out")
    assert letter is not None
    assert (letter.step, letter.error_type) == ("publish", "InvalidRecordError")
    assert "in/0@7" in letter.message
    assert "has no key" in letter.message
    assert "topic 'out' is compacted" in letter.message


async def test_an_output_over_the_limit_becomes_a_dead_letter_before_any_send():
    producer = ScriptedProducer(batch_size=3000)
    publisher = make(producer, partitions=1, limits=TopicLimits(3000, 100_000))
    r0, r1, r2 = record(0, 0), record(0, 1), record(0, 2)
    big, _ = sized(3001, r1)
    items = [output(r0), output(r1, big), output(r2)]
    vet_outputs(items, TopicLimits(3000, 100_000), "out")
    deliveries = (await publisher.send_outputs(items)).deliveries()
    assert [d.is_dead_letter for d in deliveries] == [False, True, False]
    assert items[1].output is None
    assert items[1].letter is not None
    assert items[1].letter.step == "publish"
    assert producer.calls == [
        ("send", "dlq", None, b"k0-1"),
        ("batch", "out", 0, [b"k0-0", b"k0-2"]),
    ]
    body = orjson.loads(producer.sent[0]["value"])
    assert "3,001 bytes" in body["error"]["message"]
    settled = [await publisher.settle(d) for d in deliveries]
    assert publisher.batch_fallbacks == publisher.publish_retries == 0
    assert [d.is_dead_letter for d in settled] == [False, True, False]


async def test_a_dead_letter_over_the_dead_letter_topics_limit_goes_without_its_value_at_once():
    producer = ScriptedProducer()
    publisher = make(producer, limits=TopicLimits(100_000, 2000))
    rec = record(0, 3)
    small = letter(rec)
    assert small.letter is not None
    large = DeadLetter("ValueError", "boom", "execute", "in", 0, 4, 1000, b"v" * 2000)
    await publisher.send_dead_letter(Message(rec), 0, small.letter)
    delivery = await publisher.send_dead_letter(Message(record(0, 4)), 0, large)
    first, second = (orjson.loads(s["value"]) for s in producer.sent)
    assert first["value"] is not None
    assert second["value"] is None
    assert "2000 bytes too large" in second["value_omitted"]
    assert delivery.letter is not None
    assert delivery.letter.value is None
    assert [s["topic"] for s in producer.sent] == ["dlq", "dlq"]


async def test_a_keyless_output_for_a_compacted_topic_is_vetted_into_a_dead_letter_sent_alone():
    producer = ScriptedProducer()
    limits = TopicLimits(3000, 100_000, output_compacted=True)
    publisher = make(producer, limits=limits)
    rec = dataclasses.replace(record(0, 9), key=None)
    item = Message(rec, output=b"{}", rows=1)
    vet_outputs([item], limits, "out")
    delivery = await publisher.send_message(item)
    assert delivery.is_dead_letter
    assert producer.calls == [("send", "dlq", None, None)]


def encode(letter: DeadLetter) -> bytes:
    return encode_dead_letter(letter, worker_id="w", backend="B")


@given(message=st.text(max_size=3000), value=st.binary(max_size=3000))
def test_a_dead_letter_is_made_to_fit_value_first_then_message(message, value):
    letter = DeadLetter("ValueError", message, "execute", "in", 0, 4, 1000, value)
    hdrs = [("packflow-source", b"in/0/4")]
    limit = 1000
    fitted, encoded = fit_dead_letter(letter, b"key", hdrs, limit, encode)
    assert encoded == encode(fitted)
    size = one_message_batch_bytes(b"key", encoded, hdrs)
    assert size <= limit
    if one_message_batch_bytes(b"key", encode(letter), hdrs) <= limit:
        assert fitted == letter
    elif one_message_batch_bytes(b"key", encode(letter.without_value()), hdrs) <= limit:
        assert fitted == letter.without_value()
    else:
        note = " [cut to fit max.message.bytes 1,000]"
        assert fitted.value is None
        assert fitted.message.endswith(note)
        assert message.startswith(fitted.message.removesuffix(note))
        assert (fitted.error_type, fitted.offset) == ("ValueError", 4)


topic_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=249)


@given(
    key=blobs,
    value=st.binary(max_size=20000),
    topic=topic_names,
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
)
def test_without_input_headers_key_and_value_plus_the_headroom_cover_the_request_estimate(
    key, value, topic, partition, offset
):
    rec = ConsumerRecord(topic, partition, offset, 0, 0, key, b"{}", None, 0, 2, ())
    trace = ("traceparent", b"00-" + b"f" * 32 + b"-" + b"f" * 16 + b"-01")
    headers = [*output_headers(rec), trace]  # what a traced output carries
    estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    assert estimate <= len(value) + len(key or b"") + HEADROOM


@pytest.mark.parametrize("key", [b"k", None])
def test_a_headerless_output_at_the_limit_passes_and_one_byte_over_is_refused(key):
    rec = ConsumerRecord("in", 0, 5, 0, 0, key, b"{}", None, 0, 2, ())
    hdrs = output_headers(rec)
    at_limit = next(
        b"x" * n for n in range(3000) if one_message_batch_bytes(key, b"x" * n, hdrs) == 3000
    )
    fits = Message(rec, output=at_limit, rows=1)
    over = Message(rec, output=at_limit + b"x", rows=1)
    vet_outputs([fits, over], TopicLimits(3000, 3000), "out")
    assert fits.letter is None
    assert over.letter is not None
    assert "3,001 bytes as a record batch, over max.message.bytes 3,000" in over.letter.message

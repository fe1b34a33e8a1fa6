"""Publishing outputs, dead letters and metric events, and settling their delivery.

``send_*`` queue messages on the producer and return :class:`Delivery` objects whose futures
the ack stage settles with :meth:`Publisher.settle`, in order.

:meth:`Publisher.send_outputs` queues all messages of one fetched batch. Outputs go through
aiokafka's batch API: one ``BatchBuilder`` per output partition, filled in input order and
handed to ``send_batch`` when full and at the end; the deliveries of one builder share its
future. Dead letters, and an output too large for even an empty builder (``max_batch_bytes``),
go through the per-message ``send()``; the builder of that output's partition is sent first,
so per-partition order holds.

Nothing is sent that the broker would refuse for good (after such a refusal aiokafka's
idempotent producer fails every later send to the partition): with the
:class:`~worker._kafka.TopicLimits` read at start-up, before any send,

* an output whose one-message record batch (:func:`one_message_batch_bytes`) is over the
  output topic's ``max.message.bytes``, or whose input message has no key while the output
  topic is compacted, becomes a ``publish`` dead letter (:func:`output_refusal`);
* a dead letter over the dead-letter topic's limit goes without the original value, and
  with its error message cut if it is still over (:func:`fit_dead_letter`);
* batches of several messages (builders, and aiokafka's grouping of ``send()`` calls) never
  grow past either limit (``max_batch_bytes``, the producer's ``max_batch_size``, is at most
  both).

Settling never gives up:

* when a builder's shared future fails, each of its deliveries is sent again alone with
  ``send()`` right away (no backoff, no dead letter yet), so one refused message does not
  turn its batch-mates into dead letters; from then on it is settled as below;
* an output the broker (or the producer, over its 1 MiB request size) still refuses for
  good becomes a dead letter with step ``publish``;
* a dead letter the broker refuses for good is sent again without the original value (the
  ``source`` still locates it in the input topic);
* any other failure is retried with exponential backoff (up to 5 s between attempts) until it
  succeeds or the worker is stopped; the offset is not committed meanwhile.

Output messages go to partition ``input partition % output partitions``: every key and every
input partition map to one output partition, so per-key and per-input-partition order hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import size_of_varint
from aiokafka.structs import ConsumerRecord

from worker._kafka import UNLIMITED, TopicLimits, to_publish_error
from worker.codec import DeadLetter, encode_dead_letter, encode_event, locate
from worker.errors import PublishError

__all__ = [
    "SOURCE_HEADER",
    "Delivery",
    "Prepared",
    "Publisher",
    "SharedBatch",
    "fit_dead_letter",
    "one_message_batch_bytes",
    "output_refusal",
    "publish_letter",
    "source_of",
]

SOURCE_HEADER = "packflow-source"
_MAX_BACKOFF = 5.0
_MAX_PENDING_EVENTS = 1000
# A v2 record batch's fixed header (base offset and length included) and, for its only
# record, the attributes byte and the timestamp and offset deltas (0: one byte each).
_BATCH_HEADER_BYTES = 61
_FIRST_RECORD_FIXED_BYTES = 3


@dataclass(slots=True, eq=False)
class SharedBatch:
    """One builder of outputs for one output partition, sent with ``send_batch``.

    ``future`` is a pending placeholder that its deliveries hold until it is sent; sending it
    gives each of them the batch's delivery future instead, which they share. ``builder`` and
    ``members`` are dropped once it is sent (no reference cycle with the deliveries); ``size``
    keeps the count.
    """

    partition: int
    builder: Any
    future: asyncio.Future[Any]
    members: list[Delivery] = field(default_factory=list)
    size: int = 0
    failure_logged: bool = False


@dataclass(slots=True)
class Delivery:
    """One queued message for one input message: its output or its dead letter.

    ``batch`` is set while the output rides in a batch sent with ``send_batch``: ``future``
    is then that batch's shared future.
    """

    record: ConsumerRecord[bytes, bytes]
    tp: TopicPartition
    epoch: int
    future: asyncio.Future[Any]
    value: bytes
    letter: DeadLetter | None = None
    batch: SharedBatch | None = None

    @property
    def is_dead_letter(self) -> bool:
        """True when this delivery goes to the dead-letter topic."""
        return self.letter is not None


@dataclass(slots=True)
class Prepared:
    """One input message ready to publish: its encoded output, or its dead letter.

    ``epoch`` is the offset tracker's epoch to acknowledge it with (:class:`Delivery`).
    """

    record: ConsumerRecord[bytes, bytes]
    tp: TopicPartition
    value: bytes | None
    letter: DeadLetter | None
    rows: int = 0
    epoch: int = 0


def publish_letter(
    record: ConsumerRecord[bytes, bytes], exc: BaseException, error: PublishError
) -> DeadLetter:
    """The ``publish`` dead letter replacing the output of ``record`` the broker refused."""
    message = f"output of {locate(record)} could not be published: {error}"
    return DeadLetter.of(record, type(exc).__name__, message, "publish")


def one_message_batch_bytes(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> int:
    """The size of a record batch holding only this message (uncompressed).

    This is what aiokafka's ``BatchBuilder.size()`` gives and what the broker compares with
    the topic's ``max.message.bytes``.
    """
    body = _FIRST_RECORD_FIXED_BYTES + int(DefaultRecordBatchBuilder.size_of(key, value, headers))
    return _BATCH_HEADER_BYTES + int(size_of_varint(body)) + body


def output_refusal(
    record: ConsumerRecord[bytes, bytes],
    value: bytes,
    headers: list[tuple[str, bytes]],
    limits: TopicLimits,
    topic: str,
) -> DeadLetter | None:
    """The ``publish`` dead letter for an output that ``topic`` would refuse, else None."""
    if limits.output_compacted and record.key is None:
        message = (
            f"output of {locate(record)} cannot be published: the input message has no key "
            f"and topic {topic!r} is compacted (its cleanup.policy has compact), which "
            "refuses records without a key"
        )
        return DeadLetter.of(record, "InvalidRecordError", message, "publish")
    size = one_message_batch_bytes(record.key, value, headers)
    limit = limits.output_max_message_bytes
    if size > limit:
        message = (
            f"output of {locate(record)} is {size:,} bytes as a record batch, "
            f"over max.message.bytes {limit:,} of topic {topic!r}"
        )
        return DeadLetter.of(record, "MessageSizeTooLargeError", message, "publish")
    return None


def fit_dead_letter(
    letter: DeadLetter,
    key: bytes | None,
    headers: list[tuple[str, bytes]],
    limit: int,
    encode: Callable[[DeadLetter], bytes],
) -> tuple[DeadLetter, bytes]:
    """``letter`` and its encoding, made to fit a topic whose ``max.message.bytes`` is ``limit``.

    Over the limit, the original value is left out (:meth:`DeadLetter.without_value`); still
    over it, the end of the error message is cut. Key, headers and ``source`` are kept.
    """
    value = encode(letter)
    size = one_message_batch_bytes(key, value, headers)
    if size > limit and letter.value is not None:
        letter = letter.without_value()
        value = encode(letter)
        size = one_message_batch_bytes(key, value, headers)
    note = f" [cut to fit max.message.bytes {limit:,}]"
    text = letter.message
    while size > limit and text:
        text = text[: max(0, len(text) - (size - limit) - len(note))]
        letter = dataclasses.replace(letter, message=text + note)
        value = encode(letter)
        size = one_message_batch_bytes(key, value, headers)
    return letter, value


def _failed_future(exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


def source_of(headers: Iterable[tuple[str, bytes]] | None) -> tuple[str, int, int] | None:
    """``(topic, partition, offset)`` of the input named by an output's ``packflow-source``
    header (as :func:`_headers` writes it), or None when ``headers`` have none."""
    for name, value in headers or ():
        if name == SOURCE_HEADER:
            topic, partition, offset = value.decode().rsplit("/", 2)
            return topic, int(partition), int(offset)
    return None


def _headers(record: ConsumerRecord[bytes, bytes]) -> list[tuple[str, bytes]]:
    source = f"{record.topic}/{record.partition}/{record.offset}".encode()
    kept = [(k, v) for k, v in (record.headers or ()) if k != SOURCE_HEADER]
    kept.append((SOURCE_HEADER, source))
    return kept


class Publisher:
    """Sends outputs, dead letters and events with one producer; see the module docstring.

    ``limits`` are the topics' limits read at start-up; ``max_batch_bytes`` (by default
    ``limits.batch_bytes``) must be the producer's ``max_batch_size``.

    Counters, for observation: ``batches_sent`` (``send_batch`` calls), ``batch_fallbacks``
    (deliveries sent again alone after their batch failed) and ``publish_retries`` (sends
    retried after a backoff).
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        output_topic: str,
        output_partitions: int,
        dlq_topic: str,
        metrics_topic: str | None,
        worker_id: str,
        backend: str,
        logger: Any,
        limits: TopicLimits = UNLIMITED,
        max_batch_bytes: int | None = None,
    ) -> None:
        self._producer = producer
        self._limits = limits
        self._max_batch_bytes = limits.batch_bytes if max_batch_bytes is None else max_batch_bytes
        self._output_topic = output_topic
        self._output_partitions = output_partitions
        self._dlq_topic = dlq_topic
        self._metrics_topic = metrics_topic
        self._worker_id = worker_id
        self._backend = backend
        self._log = logger
        self._events: set[asyncio.Future[Any]] = set()
        self.publish_retries = 0
        self.batch_fallbacks = 0
        self.batches_sent = 0

    async def _send(
        self,
        topic: str,
        value: bytes,
        record: ConsumerRecord[bytes, bytes],
        partition: int | None,
    ) -> asyncio.Future[Any]:
        try:
            future: asyncio.Future[Any] = await self._producer.send(
                topic, value, key=record.key, partition=partition, headers=_headers(record)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # aiokafka raises some refusals before queueing
            return _failed_future(exc)
        return future

    async def send_output(
        self, record: ConsumerRecord[bytes, bytes], tp: TopicPartition, epoch: int, value: bytes
    ) -> Delivery:
        """Queue the output message of ``record``."""
        future = await self._send(self._output_topic, value, record, self._output_partition(record))
        return Delivery(record, tp, epoch, future, value)

    async def send_dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        tp: TopicPartition,
        epoch: int,
        letter: DeadLetter,
    ) -> Delivery:
        """Queue the dead letter of ``record``, made to fit the topic (:func:`fit_dead_letter`)."""
        letter, value = fit_dead_letter(
            letter,
            record.key,
            _headers(record),
            self._limits.dlq_max_message_bytes,
            self._encode_letter,
        )
        future = await self._send(self._dlq_topic, value, record, None)
        return Delivery(record, tp, epoch, future, value, letter)

    def vet(self, item: Prepared, headers: list[tuple[str, bytes]] | None = None) -> None:
        """Turn ``item``'s output into a ``publish`` dead letter if the broker would refuse it."""
        if item.letter is not None or item.value is None:
            return
        record = item.record
        letter = output_refusal(
            record,
            item.value,
            _headers(record) if headers is None else headers,
            self._limits,
            self._output_topic,
        )
        if letter is not None:
            item.letter = letter
            item.value = None

    async def send_prepared(self, item: Prepared) -> Delivery:
        """Queue ``item``: its output (vetted first, see :meth:`vet`), or its dead letter."""
        self.vet(item)
        if item.letter is None:
            assert item.value is not None
            return await self.send_output(item.record, item.tp, item.epoch, item.value)
        return await self.send_dead_letter(item.record, item.tp, item.epoch, item.letter)

    async def send_outputs(self, items: list[Prepared]) -> list[Delivery]:
        """Queue the messages of one fetched batch, in input order.

        Each output is vetted first (:meth:`vet`: one the broker would refuse becomes a dead
        letter). Outputs go in one ``send_batch`` per output partition (more when a builder
        fills up), dead letters and outputs too large for an empty builder one by one with
        ``send()``; see the module docstring. Returns one delivery per item, in the same order.
        """
        deliveries: list[Delivery] = []
        batches: dict[int, SharedBatch] = {}
        for item in items:
            record, epoch = item.record, item.epoch
            headers = _headers(record)
            self.vet(item, headers)
            if item.letter is not None:
                deliveries.append(await self.send_dead_letter(record, item.tp, epoch, item.letter))
                continue
            value = item.value
            assert value is not None
            partition = self._output_partition(record)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = self._new_batch(partition)
            append = batch.builder.append
            if append(key=record.key, value=value, timestamp=None, headers=headers) is None:
                await self._send_batch(batch)
                batch = batches[partition] = self._new_batch(partition)
                # The first message of a builder is always taken, whatever its size.
                batch.builder.append(key=record.key, value=value, timestamp=None, headers=headers)
            if not batch.members and batch.builder.size() > self._max_batch_bytes:
                # It does not fit even alone: drop this builder, send the message by itself.
                del batches[partition]
                deliveries.append(await self.send_output(record, item.tp, epoch, value))
                continue
            delivery = Delivery(record, item.tp, epoch, batch.future, value, None, batch)
            batch.members.append(delivery)
            deliveries.append(delivery)
        for batch in batches.values():
            await self._send_batch(batch)
        return deliveries

    def _output_partition(self, record: ConsumerRecord[bytes, bytes]) -> int:
        """The output partition of ``record``'s output (see the module docstring)."""
        partition: int = record.partition
        return partition % self._output_partitions

    def _new_batch(self, partition: int) -> SharedBatch:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        return SharedBatch(partition, self._producer.create_batch(), future)

    async def _send_batch(self, batch: SharedBatch) -> None:
        batch.builder.close()
        self.batches_sent += 1
        try:
            future: asyncio.Future[Any] = await self._producer.send_batch(
                batch.builder, self._output_topic, partition=batch.partition
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. no room in the producer's queue in time
            future = _failed_future(exc)
        batch.size = len(batch.members)
        for delivery in batch.members:
            delivery.future = future
        batch.builder = None
        batch.members = []

    async def settle(self, delivery: Delivery) -> Delivery:
        """Wait until ``delivery`` is acknowledged, retrying as the module docstring says.

        Returns the delivery that was finally acknowledged: a dead letter replaces an output
        the broker refused for good.
        """
        backoff = 0.1
        while True:
            try:
                await delivery.future
                return delivery
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                topic = self._dlq_topic if delivery.is_dead_letter else self._output_topic
                record = delivery.record
                error, replacement = self.refused(record, delivery.letter, exc)
                shared = delivery.batch
                if shared is not None:
                    delivery.batch = None
                    self._log_batch_failure(shared, error)
                    self.batch_fallbacks += 1
                    partition = self._output_partition(record)
                    delivery.future = await self._send(topic, delivery.value, record, partition)
                    continue
                if replacement is not None and not delivery.is_dead_letter:
                    delivery = await self.send_dead_letter(
                        record, delivery.tp, delivery.epoch, replacement
                    )
                    continue
                if replacement is not None:
                    delivery.letter = replacement
                    delivery.value = self._encode_letter(replacement)
                self.publish_retries += 1
                self._log.warning(
                    "publish_retry",
                    source=locate(record),
                    topic=topic,
                    error=str(error),
                    retry_in_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                delivery.future = await self._send(
                    topic,
                    delivery.value,
                    record,
                    None if delivery.is_dead_letter else self._output_partition(record),
                )

    def refused(
        self, record: ConsumerRecord[bytes, bytes], letter: DeadLetter | None, exc: BaseException
    ) -> tuple[PublishError, DeadLetter | None]:
        """Translate a failed send of ``record``'s output (``letter`` None) or dead letter.

        Returns the error and, when the broker refused the message for good, the dead letter
        to send instead: for an output its ``publish`` dead letter (:func:`publish_letter`),
        for a dead letter ``letter`` without the original value. None when it is retriable.
        """
        error = to_publish_error(exc, self._output_topic if letter is None else self._dlq_topic)
        if error.retriable:
            return error, None
        if letter is None:
            return error, publish_letter(record, exc, error)
        return error, letter.without_value()

    def _log_batch_failure(self, shared: SharedBatch, error: PublishError) -> None:
        if not shared.failure_logged:
            shared.failure_logged = True
            self._log.warning(
                "publish_batch_failed",
                topic=self._output_topic,
                partition=shared.partition,
                messages=shared.size,
                error=str(error),
                then="each message is sent again alone",
            )

    def _encode_letter(self, letter: DeadLetter) -> bytes:
        return encode_dead_letter(letter, worker_id=self._worker_id, backend=self._backend)

    async def publish_event(self, fields: dict[str, Any]) -> None:
        """Send an event to the metrics topic, if set; failures are logged, never retried."""
        if self._metrics_topic is None:
            return
        if len(self._events) >= _MAX_PENDING_EVENTS:
            self._log.warning("metrics_event_dropped", reason="too many unacknowledged events")
            return
        try:
            future = await self._producer.send(self._metrics_topic, encode_event(fields))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.warning("metrics_event_failed", error=f"{type(exc).__name__}: {exc}")
            return
        self._events.add(future)
        future.add_done_callback(self._event_done)

    def _event_done(self, future: asyncio.Future[Any]) -> None:
        self._events.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self._log.warning("metrics_event_failed", error=str(future.exception()))

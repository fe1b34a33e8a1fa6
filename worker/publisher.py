"""Publishing outputs, dead letters and metric events with one producer, and settling them.

``send_*`` queue messages on the producer and return :class:`Delivery` handles whose futures
:meth:`Publisher.settle` waits on, in order.

:meth:`Publisher.send_outputs` queues all messages of one fetched batch and returns a
:class:`Sent`: the futures to wait on, and the deliveries when they are needed one by one.
Outputs go through aiokafka's batch API: one ``BatchBuilder`` per output partition, filled
in input order and handed to ``send_batch`` when full and at the end; the deliveries of one
builder share its future. Dead letters, and an output too large for even an empty builder
(``max_batch_bytes``), go through the per-message ``send()``; the builder of that output's
partition is sent first, so per-partition order holds. No batch of several messages grows
past the output or dead-letter topic's limit (``max_batch_bytes``, the producer's
``max_batch_size``, is at most both); a dead letter is made to fit its topic
(:func:`~worker.pipeline.fit_dead_letter`).

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from worker._backoff import Backoff
from worker._kafka import send_and_wait, send_error
from worker.codec import DeadLetter, encode_dead_letter, encode_event, locate
from worker.errors import AuthorizationError, PublishError
from worker.limits import UNLIMITED, TopicLimits
from worker.pipeline import Message, fit_dead_letter, publish_letter

__all__ = ["Delivery", "Publisher", "Sent", "SharedBatch"]

_MAX_BACKOFF = 5.0
_MAX_PENDING_EVENTS = 1000


@dataclass(slots=True, eq=False)
class SharedBatch:
    """One builder of outputs for one output partition, sent with ``send_batch``.

    ``future`` is set when it is sent: the delivery future its ``size`` messages share.
    ``builder`` is dropped then.
    """

    partition: int
    builder: Any
    size: int = 0
    failure_logged: bool = False
    future: asyncio.Future[Any] = field(init=False)


@dataclass(slots=True, eq=False)
class Delivery:
    """The send of one message's outcome: its output, or its dead letter (``letter``).

    ``epoch`` is the offset tracker's epoch to acknowledge it with. ``batch`` is set while
    the output rides in a batch sent with ``send_batch``: ``future`` is then that batch's
    shared future.
    """

    message: Message
    epoch: int
    future: asyncio.Future[Any]
    value: bytes
    letter: DeadLetter | None = None
    batch: SharedBatch | None = None

    @property
    def record(self) -> ConsumerRecord[bytes, bytes]:
        """The input message."""
        return self.message.record

    @property
    def tp(self) -> TopicPartition:
        """The input partition."""
        return self.message.tp

    @property
    def is_dead_letter(self) -> bool:
        """True when this delivery goes to the dead-letter topic."""
        return self.letter is not None


def _failed_future(exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


@dataclass(slots=True, eq=False)
class Sent:
    """The sends of one batch's outcomes (:meth:`Publisher.send_outputs`).

    ``futures`` are the distinct futures its messages wait on: when all of them succeeded,
    every message was acknowledged. :meth:`deliveries` gives each message's :class:`Delivery`
    (for settling them one by one). ``slots[i]`` is message ``i``'s own delivery, or the
    shared batch it rides in.
    """

    messages: list[Message]
    slots: list[Delivery | SharedBatch]
    epochs: Mapping[TopicPartition, int] | None
    futures: set[asyncio.Future[Any]] = field(default_factory=set)
    _deliveries: list[Delivery] | None = None

    def deliveries(self) -> list[Delivery]:
        """One delivery per message, in order (made on the first call)."""
        if self._deliveries is None:
            epochs = self.epochs or {}
            self._deliveries = [
                slot
                if isinstance(slot, Delivery)
                else Delivery(
                    message,
                    epochs.get(message.tp, 0),
                    slot.future,
                    message.output or b"",
                    None,
                    slot,
                )
                for message, slot in zip(self.messages, self.slots, strict=True)
            ]
        return self._deliveries


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
        on_fatal: Callable[[BaseException], None] = lambda _exc: None,
    ) -> None:
        self._producer = producer
        self._on_fatal = on_fatal
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
        message: Message,
        partition: int | None,
    ) -> asyncio.Future[Any]:
        try:
            future: asyncio.Future[Any] = await self._producer.send(
                topic, value, key=message.record.key, partition=partition, headers=message.headers
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # aiokafka raises some refusals before queueing
            return _failed_future(exc)
        return future

    async def send_output(self, message: Message, epoch: int, value: bytes) -> Delivery:
        """Queue the output ``value`` of ``message``."""
        partition = self._output_partition(message.record)
        future = await self._send(self._output_topic, value, message, partition)
        return Delivery(message, epoch, future, value)

    async def send_dead_letter(self, message: Message, epoch: int, letter: DeadLetter) -> Delivery:
        """Queue the dead letter of ``message``, made to fit the topic (:func:`fit_dead_letter`)."""
        letter, value = fit_dead_letter(
            letter,
            message.record.key,
            message.headers,
            self._limits.dead_letter_bytes,
            self._encode_letter,
        )
        future = await self._send(self._dlq_topic, value, message, None)
        return Delivery(message, epoch, future, value, letter)

    async def send_message(self, message: Message, epoch: int = 0) -> Delivery:
        """Queue ``message``'s outcome by itself: its output, or its dead letter."""
        if message.letter is not None:
            return await self.send_dead_letter(message, epoch, message.letter)
        assert message.output is not None
        return await self.send_output(message, epoch, message.output)

    async def send_outputs(
        self, messages: list[Message], epochs: Mapping[TopicPartition, int] | None = None
    ) -> Sent:
        """Queue the outcomes of one fetched batch, in input order (see the module docstring).

        Outputs go in one ``send_batch`` per output partition (more when a builder fills
        up), dead letters and outputs too large for an empty builder one by one with
        ``send()``. ``epochs`` gives each input partition's tracker epoch (default 0).
        """
        sent = Sent(messages, [], epochs)
        slots, futures = sent.slots, sent.futures
        batches: dict[int, SharedBatch] = {}
        output_partitions = self._output_partitions
        last_tp: TopicPartition | None = None
        partition = 0
        source = b""
        batch: SharedBatch | None = None
        for message in messages:
            if message.letter is not None:
                epoch = 0 if epochs is None else epochs.get(message.tp, 0)
                delivery = await self.send_dead_letter(message, epoch, message.letter)
                slots.append(delivery)
                futures.add(delivery.future)
                continue
            if message.tp is not last_tp:
                last_tp = message.tp
                partition = last_tp.partition % output_partitions  # as _output_partition()
                batch = batches.get(partition)
                source = f"{last_tp.topic}/{last_tp.partition}/".encode()
            if batch is None:
                batch = batches[partition] = self._new_batch(partition)
            record, value, headers = message.record, message.output, message.headers_from(source)
            assert value is not None
            if (
                batch.builder.append(key=record.key, value=value, timestamp=None, headers=headers)
                is None
            ):
                futures.add(await self._send_batch(batch))
                batch = batches[partition] = self._new_batch(partition)
                # The first message of a builder is always taken, whatever its size.
                batch.builder.append(key=record.key, value=value, timestamp=None, headers=headers)
            if not batch.size and batch.builder.size() > self._max_batch_bytes:
                # It does not fit even alone: drop this builder, send the message by itself.
                del batches[partition]
                batch = None
                epoch = 0 if epochs is None else epochs.get(message.tp, 0)
                delivery = await self.send_output(message, epoch, value)
                slots.append(delivery)
                futures.add(delivery.future)
                continue
            batch.size += 1
            slots.append(batch)
        for batch in batches.values():
            futures.add(await self._send_batch(batch))
        return sent

    def _output_partition(self, record: ConsumerRecord[bytes, bytes]) -> int:
        """The output partition of ``record``'s output (see the module docstring)."""
        partition: int = record.partition
        return partition % self._output_partitions

    def _new_batch(self, partition: int) -> SharedBatch:
        return SharedBatch(partition, self._producer.create_batch())

    async def _send_batch(self, batch: SharedBatch) -> asyncio.Future[Any]:
        """Send ``batch``; returns its future (also ``batch.future``)."""
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
        batch.future = future
        batch.builder = None
        return future

    async def settle(self, delivery: Delivery) -> Delivery:
        """Wait until ``delivery`` is acknowledged, retrying as the module docstring says.

        Returns the delivery that was finally acknowledged: a dead letter replaces an output
        the broker refused for good.
        """
        backoff: Backoff | None = None  # made on the first failure only: the hot path acks
        while True:
            try:
                await delivery.future
                return delivery
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if backoff is None:
                    backoff = Backoff(initial=0.1, maximum=_MAX_BACKOFF)
                delivery = await self._after_failure(delivery, exc, backoff)

    async def _after_failure(
        self, delivery: Delivery, exc: Exception, backoff: Backoff
    ) -> Delivery:
        """The delivery to wait for next, after ``delivery`` failed with ``exc``."""
        topic = self._dlq_topic if delivery.is_dead_letter else self._output_topic
        record = delivery.record
        error, replacement = self.refused(record, delivery.letter, exc)
        shared = delivery.batch
        if shared is not None:
            delivery.batch = None
            self._log_batch_failure(shared, error)
            self.batch_fallbacks += 1
            partition = self._output_partition(record)
            delivery.future = await self._send(topic, delivery.value, delivery.message, partition)
            return delivery
        if replacement is not None and not delivery.is_dead_letter:
            return await self.send_dead_letter(delivery.message, delivery.epoch, replacement)
        if replacement is not None:
            delivery.letter = replacement
            delivery.value = self._encode_letter(replacement)
        self.publish_retries += 1
        delay = backoff.next_delay()
        self._log.warning(
            "publish_retry", source=locate(record), topic=topic, error=str(error), retry_in_s=delay
        )
        await asyncio.sleep(delay)
        target = None if delivery.is_dead_letter else self._output_partition(record)
        delivery.future = await self._send(topic, delivery.value, delivery.message, target)
        return delivery

    def refused(
        self, record: ConsumerRecord[bytes, bytes], letter: DeadLetter | None, exc: BaseException
    ) -> tuple[PublishError, DeadLetter | None]:
        """Translate a failed send of ``record``'s output (``letter`` None) or dead letter.

        Returns the error and, when the broker refused the message for good, the dead letter
        to send instead: for an output its ``publish`` dead letter (:func:`publish_letter`),
        for a dead letter ``letter`` without the original value. None when it is retriable.
        Raises :class:`~worker.errors.AuthorizationError` when the worker may not write there.
        """
        topic = self._output_topic if letter is None else self._dlq_topic
        error = send_error(exc, topic)
        if isinstance(error, AuthorizationError):
            raise error from exc
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

    async def announce(self, fields: dict[str, Any], seconds: float) -> None:
        """Send a lifecycle event to the metrics topic (if set) and wait for its ack.

        At start-up this proves the worker may write there: a missing ACL is a
        :class:`~worker.errors.AuthorizationError`; other failures raise
        :class:`~worker.errors.PublishError`.
        """
        if self._metrics_topic is None:
            return
        await send_and_wait(self._producer, self._metrics_topic, encode_event(fields), seconds)

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
            self._event_failed(exc)
            return
        self._events.add(future)
        future.add_done_callback(self._event_done)

    def _event_done(self, future: asyncio.Future[Any]) -> None:
        self._events.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self._event_failed(future.exception())

    def _event_failed(self, exc: BaseException | None) -> None:
        assert self._metrics_topic is not None
        assert exc is not None
        error = send_error(exc, self._metrics_topic)
        if isinstance(error, AuthorizationError):
            self._on_fatal(error)
            return
        self._log.warning("metrics_event_failed", error=f"{type(exc).__name__}: {exc}")

"""One fencing transactional producer per input partition; one transaction per share.

aiokafka lacks KIP-447 (the consumer group generation in transactional offset commits), so
zombie fencing relies on a stable ``transactional_id`` per input partition,
``packflow-<group>-<topic>-<partition>``: starting its producer (``InitProducerId``) fences
every earlier owner and completes or aborts its pending transaction.

:meth:`TransactionalPublisher.publish` sends a partition's share of a batch, adds the next
offset and commits. A failed send or commit aborts and retries the whole transaction with
backoff and one ``send()`` per message; a message refused for good is replaced by its dead
letter (an output) or sent without its value (a dead letter). A fenced producer is fatal:
another worker owns the partition and processes it from the last committed transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from worker._backoff import Backoff
from worker._kafka import ask, describe, is_fenced, refusal, stop_bounded
from worker.clients import KafkaClients
from worker.errors import AuthorizationError, KafkaFatalError, KafkaUnanswered, ProducerFencedError
from worker.limits import UNLIMITED, TopicLimits
from worker.pipeline import Message
from worker.publisher import Publisher

__all__ = ["TransactionalPublisher", "transactional_id"]

_MAX_BACKOFF = 5.0


def transactional_id(group_id: str, tp: TopicPartition) -> str:
    """The stable transactional id of input partition ``tp`` in ``group_id``."""
    return f"packflow-{group_id}-{tp.topic}-{tp.partition}"


class _RetryTransaction(Exception):
    def __init__(self, messages: list[Message]) -> None:
        super().__init__("a message of the transaction was not acknowledged")
        self.messages = messages  # what the next attempt sends


class _Revoked(Exception):
    pass


class TransactionalPublisher:
    """One transactional producer per assigned input partition, within the topics' ``limits``."""

    def __init__(
        self,
        clients: KafkaClients,
        *,
        output_partitions: int,
        backend: str,
        logger: Any,
        limits: TopicLimits = UNLIMITED,
    ) -> None:
        self._clients = clients
        self._settings = clients.settings
        self._limits = limits
        self._output_partitions = output_partitions
        self._backend = backend
        self._log = logger
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self.transactions = 0
        self.aborts = 0

    def _publisher(self, producer: AIOKafkaProducer) -> Publisher:
        s = self._settings
        return Publisher(
            producer,
            output_topic=s.output_topic,
            output_partitions=self._output_partitions,
            dlq_topic=s.dlq_topic,
            metrics_topic=None,
            worker_id=s.worker_id,
            backend=self._backend,
            logger=self._log,
            limits=self._limits,
        )

    async def _start(self, tp: TopicPartition) -> None:
        producer = self._clients.producer(
            max_batch_bytes=self._limits.batch_bytes,
            transactional_id=transactional_id(self._settings.group_id, tp),
        )
        try:
            await ask(
                producer.start(),
                self._settings.startup_timeout_seconds,
                f"starting the transactional producer of {tp.topic}/{tp.partition}",
                refuse=lambda exc: self._refusal(exc, tp),
            )
        except BaseException:
            await stop_bounded(producer, 2.0)
            raise
        self._producers[tp] = producer

    async def assign(self, partitions: set[TopicPartition]) -> None:
        """Keep producers for ``partitions`` only, starting the missing ones (concurrently).

        Starting a producer fences every earlier producer of its transactional id, and
        returns only once their last transaction has completed or been aborted.
        """
        await self.revoke(set(self._producers) - partitions)
        missing = sorted(partitions - set(self._producers))
        results = await asyncio.gather(*(self._start(tp) for tp in missing), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def revoke(self, partitions: set[TopicPartition]) -> None:
        """Stop the producers of ``partitions``: a later assignment fences afresh."""
        stopping = [self._producers.pop(tp) for tp in partitions if tp in self._producers]
        await asyncio.gather(*(stop_bounded(producer, 5.0) for producer in stopping))

    async def close(self, seconds: float) -> bool:
        """Stop every producer within ``seconds``."""
        ok = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        for tp in list(self._producers):
            ok &= await stop_bounded(self._producers.pop(tp), deadline - loop.time())
        return ok

    async def publish(
        self,
        tp: TopicPartition,
        messages: list[Message],
        still_owned: Callable[[], bool] = lambda: True,
    ) -> list[Message] | None:
        """Publish ``messages`` (of ``tp``, in order) and their offsets atomically.

        Returns the messages as committed (an output refused for good is a dead letter
        there). ``still_owned`` is asked just before the commit; when it says False the
        transaction is aborted. Returns None when the partition was revoked meanwhile:
        nothing was committed and its next owner processes these messages. Raises
        :class:`KafkaFatalError` when the producer was fenced or cannot be restarted.
        """
        backoff = Backoff(initial=0.1, maximum=_MAX_BACKOFF)
        next_offset = messages[-1].record.offset + 1
        batched = True
        while True:
            producer = self._producers.get(tp)
            if producer is None:
                return None
            try:
                attempt = self._transaction(
                    producer, tp, messages, next_offset, batched=batched, still_owned=still_owned
                )
                await ask(
                    attempt,
                    None,
                    f"the transaction of {tp.topic}/{tp.partition}",
                    refuse=lambda exc: self._refusal(exc, tp),
                )
                self.transactions += 1
                return messages
            except _Revoked:
                self.aborts += 1
                await self._abort_or_restart(tp, producer)
                return None
            except ProducerFencedError as exc:
                self._producers.pop(tp, None)
                await stop_bounded(producer, 5.0)
                raise KafkaFatalError(
                    f"the transactional producer of {tp.topic}/{tp.partition} was fenced: "
                    "another worker owns the partition; stopping without committing"
                ) from exc
            except (KafkaUnanswered, _RetryTransaction) as exc:
                # KafkaUnanswered includes aiokafka's transaction manager refusing a state
                # change after a fatal error; the restart below gives a fresh producer.
                self.aborts += 1
                batched = False
                if isinstance(exc, _RetryTransaction):
                    messages = exc.messages
                delay = backoff.next_delay()
                self._log.warning(
                    "transaction_retry",
                    partition=f"{tp.topic}/{tp.partition}",
                    error=describe(exc),
                    retry_in_s=delay,
                )
                await self._abort_or_restart(tp, producer)
                await asyncio.sleep(delay)

    def _refusal(self, exc: BaseException, tp: TopicPartition) -> AuthorizationError:
        s = self._settings
        return refusal(
            exc,
            topic=(s.output_topic, s.dlq_topic),
            operation="Write",
            group=s.group_id,
            transactional_id=transactional_id(s.group_id, tp),
        )

    async def _transaction(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        messages: list[Message],
        next_offset: int,
        *,
        batched: bool,
        still_owned: Callable[[], bool],
    ) -> None:
        publisher = self._publisher(producer)
        await producer.begin_transaction()
        if batched:
            deliveries = (await publisher.send_outputs(messages)).deliveries()
        else:
            deliveries = [await publisher.send_message(message) for message in messages]
        results = await asyncio.gather(*(d.future for d in deliveries), return_exceptions=True)
        failed = False
        retry: list[Message] = []
        for message, delivery, result in zip(messages, deliveries, results, strict=True):
            if not isinstance(result, BaseException):
                retry.append(message)
                continue
            failed = True
            if is_fenced(result):
                raise result
            if delivery.batch is not None:
                retry.append(message)  # not a refusal of this message: sent alone next time
                continue
            _, replacement = publisher.refused(message.record, message.letter, result)
            if replacement is None:
                retry.append(message)
            else:
                retry.append(dataclasses.replace(message, output=None, rows=0, letter=replacement))
        if failed:
            raise _RetryTransaction(retry)
        if not still_owned():
            raise _Revoked
        await producer.send_offsets_to_transaction({tp: next_offset}, self._settings.group_id)
        await producer.commit_transaction()

    async def _abort_or_restart(self, tp: TopicPartition, producer: AIOKafkaProducer) -> None:
        # aiokafka's transaction manager can be in its fatal state (e.g. after an
        # IllegalSaslStateError when an OAUTHBEARER session expired mid-transaction), where
        # abort_transaction() fails an assertion: restarting the producer fences and aborts.
        try:
            await ask(producer.abort_transaction(), 10.0, "aborting the transaction")
            return
        except (KafkaUnanswered, AuthorizationError) as exc:
            self._log.warning(
                "transaction_abort_failed",
                partition=f"{tp.topic}/{tp.partition}",
                error=describe(exc),
                then="restarting the producer",
            )
        if self._producers.get(tp) is producer:
            self._producers.pop(tp)
            await stop_bounded(producer, 5.0)
            try:
                await self._start(tp)
            except KafkaUnanswered as exc:
                raise KafkaFatalError(
                    f"the transactional producer of {tp.topic}/{tp.partition} could not be "
                    f"restarted: {describe(exc)}"
                ) from exc

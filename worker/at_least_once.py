"""At-least-once delivery: commit an offset only after everything before it is acknowledged.

:meth:`AtLeastOnce.publish` registers a batch's offsets, queues its outcomes on the producer
(:meth:`~worker.publisher.Publisher.send_outputs`) and hands it to the acknowledgement task,
so the next batch runs in the backend while this one waits for the broker. The ack task
settles each batch's deliveries in order, acknowledges their offsets and reports the batch;
the commit task commits the contiguous acknowledged prefix of every partition
(:class:`~worker.offsets.OffsetTracker`), coalescing commits under load.

A batch fetched before a revocation is published but never acknowledged in a later
assignment (its offsets are not registered, or their epoch is stale): its partitions' next
owner processes it again from the committed offset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from worker._kafka import commit_offsets
from worker.delivery import OnSettled, Settled, settled
from worker.lifecycle import Deadline, finish_task
from worker.offsets import OffsetTracker
from worker.pipeline import Batch
from worker.publisher import Delivery, Publisher, Sent

__all__ = ["AtLeastOnce"]

_STALE_EPOCH = -1  # acknowledgements with it are ignored: the batch's assignment is gone

# A published batch, its sends and each partition's epoch.
_Queued = tuple[Batch, Sent, dict[TopicPartition, int]]


class AtLeastOnce:
    """Publishes with one idempotent producer and commits with the consumer."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        publisher: Publisher,
        on_settled: OnSettled,
        *,
        group: str,
        logger: Any,
        on_committed: Callable[[], None] = lambda: None,
        on_fatal: Callable[[BaseException], None] = lambda _exc: None,
    ) -> None:
        self._consumer = consumer
        self._group = group
        self._publisher = publisher
        self._on_settled = on_settled
        self._on_committed = on_committed
        self._on_fatal = on_fatal
        self._log = logger
        self._tracker = OffsetTracker()
        self._queue: asyncio.Queue[_Queued | None] = asyncio.Queue()
        self._commit_wanted = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._committing = True
        self._ack_task: asyncio.Task[None] | None = None
        self._commit_task: asyncio.Task[None] | None = None
        self.commits = 0

    async def start(self) -> None:
        """Start the acknowledgement and commit tasks."""
        self._ack_task = asyncio.create_task(self._reporting(self._ack_loop()), name="pf-ack")
        self._commit_task = asyncio.create_task(
            self._reporting(self._commit_loop()), name="pf-commit"
        )

    async def _reporting(self, loop: Coroutine[Any, Any, None]) -> None:
        """Run a background loop; an error that ends it stops the worker (``on_fatal``)."""
        try:
            await loop
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._on_fatal(exc)

    async def publish(self, batch: Batch, owned: Callable[[], bool]) -> None:
        """Register the batch's offsets (if its assignment is current) and queue its outcomes."""
        epochs: dict[TopicPartition, int] = {}
        current = owned()
        for tp, offsets in batch.offsets.items():
            epochs[tp] = self._tracker.register(tp, offsets) if current else _STALE_EPOCH
        sent = await self._publisher.send_outputs(batch.messages, epochs)
        batch.stats.publish_ms = (time.perf_counter() - batch.publish_started) * 1000.0
        await self._queue.put((batch, sent, epochs))

    async def _ack_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            batch, sent, epochs = item
            outcome = await self._settle(batch, sent, epochs)
            self._commit_wanted.set()
            await self._on_settled(batch, outcome)
            del item, batch, sent, outcome  # freed now, while its figures are still in cache

    async def _settle(self, batch: Batch, sent: Sent, epochs: dict[TopicPartition, int]) -> Settled:
        """Wait for the batch's sends (a batch's outputs share a few futures), then acknowledge
        them; a failed one is settled by the publisher (retried, or a dead letter), in order."""
        futures = sent.futures
        if futures:
            await asyncio.wait(futures)
        if any(f.cancelled() or f.exception() is not None for f in futures):
            return await self._settle_one_by_one(sent.deliveries(), futures)
        for tp, offsets in batch.offsets.items():
            self._tracker.ack_many(tp, offsets, epochs[tp])
        return settled(batch.messages)

    async def _settle_one_by_one(
        self, deliveries: list[Delivery], futures: set[asyncio.Future[Any]]
    ) -> Settled:
        failed = {f for f in futures if f.cancelled() or f.exception() is not None}
        acks: dict[tuple[TopicPartition, int], list[int]] = {}
        rows = 0
        kinds: list[tuple[str, str]] = []
        inputs = []
        for delivery in deliveries:
            if delivery.future in failed:
                self._ack(acks)  # what settled before it is acknowledged while it is retried
                delivery = await self._publisher.settle(delivery)  # may become a dead letter
            message, letter = delivery.message, delivery.letter
            if letter is None:
                rows += message.rows
            else:
                kinds.append((letter.step, letter.error_type))
            record = message.record
            inputs.append(record)
            acks.setdefault((message.tp, delivery.epoch), []).append(record.offset)
        self._ack(acks)
        return Settled(len(deliveries) - len(kinds), len(kinds), rows, inputs, kinds)

    def _ack(self, acks: dict[tuple[TopicPartition, int], list[int]]) -> None:
        for (tp, epoch), offsets in acks.items():
            self._tracker.ack_many(tp, offsets, epoch)
        acks.clear()

    async def _commit_loop(self) -> None:
        while self._committing:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self.commit()

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the acknowledged prefix of assigned partitions (``only`` these, if given)."""
        # One commit at a time, snapshot included, so positions never go backwards.
        async with self._commit_lock:
            offsets = self._tracker.to_commit()
            allowed = only if only is not None else set(self._consumer.assignment())
            offsets = {tp: off for tp, off in offsets.items() if tp in allowed}
            if not offsets:
                return
            error = await commit_offsets(self._consumer, offsets, self._group)
            if error:
                self._log.warning("commit_failed", error=error)
                return
            self._tracker.mark_committed(offsets)
            self._on_committed()
            self.commits += 1

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Commit what is acknowledged of ``partitions``, then forget them (new epoch)."""
        if partitions:
            await self.commit(only=partitions)
        self._tracker.forget(partitions)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """Nothing to prepare: positions come from the committed offsets."""

    async def drain(self, deadline: Deadline) -> bool:
        """Settle every queued batch, stop the commit task, commit once more."""
        clean = True
        await self._queue.put(None)
        clean &= await finish_task(self._ack_task, deadline, self._log)
        self._committing = False
        self._commit_wanted.set()
        clean &= await finish_task(self._commit_task, deadline, self._log)
        if clean:
            try:
                await asyncio.wait_for(self.commit(), deadline.remaining())
            except TimeoutError:
                clean = False
        return clean

    async def close(self, deadline: Deadline) -> bool:
        """Nothing to release: the worker owns the producer."""
        return True

    def dead_tasks(self) -> list[str]:
        """Names of this strategy's tasks that ended."""
        return [t.get_name() for t in (self._ack_task, self._commit_task) if t and t.done()]

"""Exactly-once delivery: one Kafka transaction per input partition of a batch.

Each transaction holds that partition's outputs and dead letters and its next offset
(:class:`~worker.transactions.TransactionalPublisher`, one fencing producer per assigned
partition). A batch is reported when its transactions are committed; a partition revoked
meanwhile, or whose assignment ended, commits nothing and is left to its next owner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import TopicPartition

from worker.delivery import OnSettled, settled
from worker.lifecycle import Deadline
from worker.pipeline import Batch, Message
from worker.transactions import TransactionalPublisher

__all__ = ["ExactlyOnce"]


class ExactlyOnce:
    """Publishes each batch in transactions and reports it once they are committed."""

    def __init__(self, transactions: TransactionalPublisher, on_settled: OnSettled) -> None:
        self._txn = transactions
        self._on_settled = on_settled

    @property
    def transactions(self) -> TransactionalPublisher:
        """The transactional producers (for observation)."""
        return self._txn

    @property
    def commits(self) -> int:
        """Transactions committed (each commits its partition's offset)."""
        return self._txn.transactions

    async def start(self) -> None:
        """Nothing runs in the background: transactions commit inline."""

    async def publish(self, batch: Batch, owned: Callable[[], bool]) -> None:
        """One transaction per input partition, each by its own producer and all at once;
        then report what was committed (in the batch's partition order)."""
        by_partition: dict[TopicPartition, list[Message]] = {}
        for message in batch.messages:
            by_partition.setdefault(message.tp, []).append(message)
        results = await asyncio.gather(
            *(self._txn.publish(tp, share, owned) for tp, share in by_partition.items()),
            return_exceptions=True,
        )
        committed: list[Message] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result  # every transaction has ended: none is left running
            if result is not None:
                committed.extend(result)
        batch.stats.publish_ms = (time.perf_counter() - batch.publish_started) * 1000.0
        await self._on_settled(batch, settled(committed))

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Stop the producers of ``partitions``: a later assignment fences afresh."""
        await self._txn.revoke(partitions)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """Start a producer per partition, fencing earlier owners before any record is read."""
        await self._txn.assign(partitions)

    async def drain(self, deadline: Deadline) -> bool:
        """Nothing is queued: every batch committed (or not) before the fetch loop ended."""
        return True

    async def close(self, deadline: Deadline) -> bool:
        """Stop every transactional producer."""
        return await self._txn.close(deadline.remaining())

    def dead_tasks(self) -> list[str]:
        """No background tasks."""
        return []

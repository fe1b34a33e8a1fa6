"""The rebalance hand-over: drain and give partitions up, then prepare and position new ones.

On revocation the work in flight drains (up to 80% of the rebalance timeout, not at all after
a fatal error: nothing in flight will finish then), the fetcher stops owning older batches and
the delivery strategy gives the partitions up (at-least-once: commits what is acknowledged).
On assignment the delivery strategy prepares the partitions (exactly-once: fences earlier
owners) and the fetcher positions them before its next ``getmany``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from worker.backpressure import InFlightBudget
from worker.delivery import DeliveryStrategy
from worker.fetcher import Fetcher

__all__ = ["Handover", "HandoverListener"]

_Step = Callable[[set[TopicPartition]], Awaitable[None]]


def _names(partitions: set[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}/{tp.partition}" for tp in partitions)


class Handover:
    """Runs both halves of a rebalance; ``assigned`` is the current assignment."""

    def __init__(
        self,
        fetcher: Fetcher,
        delivery: DeliveryStrategy,
        budget: InFlightBudget,
        failed: asyncio.Event,
        *,
        drain_seconds: float,
        on_begin: Callable[[], None],
        on_end: Callable[[], None],
        logger: Any,
    ) -> None:
        self._fetcher = fetcher
        self._delivery = delivery
        self._budget = budget
        self._failed = failed
        self._drain_seconds = drain_seconds
        self._on_begin = on_begin
        self._on_end = on_end
        self._log = logger
        self.assigned: set[TopicPartition] = set()
        self.assignments = 0

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        """Drain, then give ``revoked`` up."""
        self._on_begin()
        drained = await self._drain()
        self._fetcher.revoked(revoked)
        await self._delivery.revoked(revoked)
        self.assigned -= revoked
        self._log.info("partitions_revoked", partitions=_names(revoked), drained=drained)

    async def assigned_(self, assigned: set[TopicPartition]) -> None:
        """Prepare ``assigned`` (fencing first), then let the fetcher position them."""
        self._fetcher.assignment_started()
        await self._delivery.assigned(set(assigned))
        self._fetcher.assignment_ended(set(assigned))
        self.assigned = set(assigned)
        self.assignments += 1
        self._on_end()
        self._log.info("partitions_assigned", partitions=_names(assigned))

    async def _drain(self) -> bool:
        """Wait for the work in flight to finish, unless a fatal error means it never will."""
        if self._failed.is_set():
            return self._budget.empty
        empty = asyncio.ensure_future(self._budget.wait_empty(self._drain_seconds))
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait({empty, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            empty.cancel()
        return self._budget.empty


class HandoverListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance callbacks; an error in either is fatal (``on_error``).

    aiokafka logs and swallows listener errors, but a failed hand-over must stop the worker.
    """

    def __init__(
        self, revoked: _Step, assigned: _Step, on_error: Callable[[BaseException], None]
    ) -> None:
        self._revoked = revoked
        self._assigned = assigned
        self._on_error = on_error

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Called by aiokafka before a rebalance."""
        try:
            await self._revoked(set(revoked))
        except Exception as exc:
            self._on_error(exc)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Called by aiokafka after a rebalance."""
        try:
            await self._assigned(set(assigned))
        except Exception as exc:
            self._on_error(exc)

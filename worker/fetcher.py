"""Taking batches from the consumer: within the in-flight budget, never across a rebalance.

Every change of assignment bumps a generation: when a revocation hands its partitions over,
and when an assignment starts and ends. A ``getmany`` that spans a change is discarded
(``fetch_discarded``): aiokafka sets a new assignment before ``on_partitions_assigned`` runs,
so a ``getmany`` already waiting can return records of partitions that are not fenced and
positioned yet. Before the first ``getmany`` of an assignment, each partition is positioned
at its committed offset read then, after the delivery strategy prepared it (exactly-once:
fenced earlier owners, whose last transaction is then complete), so the offset is final.
When the budget is full, the assigned partitions are paused until it has room again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from worker._kafka import getmany
from worker.backpressure import InFlightBudget
from worker.errors import KafkaUnanswered
from worker.liveness import KAFKA_REQUEST_TIMEOUT, Liveness
from worker.settings import WorkerSettings

__all__ = ["Fetched", "Fetcher"]

Fetched = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class Fetcher:
    """One consumer's fetches; ``owned(generation)`` says if a batch's assignment is current."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        settings: WorkerSettings,
        budget: InFlightBudget,
        liveness: Liveness,
        *,
        rebalancing: Callable[[], bool],
        logger: Any,
    ) -> None:
        self._consumer = consumer
        self._settings = settings
        self._budget = budget
        self._liveness = liveness
        self._rebalancing = rebalancing
        self._log = logger
        self._generation = 0
        self._to_seek: set[TopicPartition] = set()
        self._rewind_from: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self.in_getmany = False
        self.pauses = 0

    @property
    def paused_count(self) -> int:
        """How many assigned partitions are paused now."""
        return len(self._paused)

    def owned(self, generation: int) -> bool:
        """True while the assignment a batch was fetched in is the current one."""
        return generation == self._generation

    def revoked(self, partitions: set[TopicPartition]) -> None:
        """A revocation hands ``partitions`` over: older batches are no longer owned."""
        self._generation += 1
        self._paused -= partitions

    def assignment_started(self) -> None:
        """An assignment is being prepared: nothing fetched meanwhile counts."""
        self._generation += 1

    def assignment_ended(self, partitions: set[TopicPartition]) -> None:
        """``partitions`` are prepared: position them before the next ``getmany``."""
        self._generation += 1
        self._to_seek = set(partitions)
        self._paused &= partitions

    async def fetch(self, stop: asyncio.Event) -> tuple[Fetched, int] | None:
        """One step: a batch and its generation, or None (nothing fetched this time)."""
        if self._rebalancing():
            await self._budget.wait_changed(0.1)
            return None
        if self._to_seek:
            await self._seek_assigned(stop)
            return None
        room = self._budget.room()
        if room == 0:
            self._pause()
            await self._budget.wait_changed(0.5)
            return None
        self._resume()
        generation = self._generation
        self.in_getmany = True
        try:
            data = await getmany(
                self._consumer,
                self._settings.max_batch_wait_ms,
                min(self._settings.max_batch_size, room),
                topic=self._settings.input_topic,
                group=self._settings.group_id,
            )
        finally:
            self.in_getmany = False
        if self._rebalancing() or generation != self._generation:
            self._discard(data)
            return None
        if not data:
            await self._liveness.check_idle(self._consumer, self._paused)
            return None
        self._liveness.fetched()
        return data, generation

    async def hold(self, seconds: float, stop: asyncio.Event) -> None:
        """Pause every assigned partition and keep polling for ``seconds`` (or until ``stop``).

        The breaker holds a batch this way: polling keeps the group member alive
        (``max.poll.interval.ms``) and runs no record; a record that still comes (from a
        partition assigned meanwhile) is sought back to, so it is fetched again later.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not stop.is_set() and not self._rebalancing():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._pause(backpressure=False)  # the breaker counts its own trips
            self.in_getmany = True
            try:
                data = await getmany(
                    self._consumer,
                    int(min(remaining, 1.0) * 1000),
                    1,
                    topic=self._settings.input_topic,
                    group=self._settings.group_id,
                )
            finally:
                self.in_getmany = False
            for tp, records in data.items():
                self._consumer.seek(tp, records[0].offset)

    def _discard(self, data: Fetched) -> None:
        for tp, records in data.items():
            first = records[0].offset
            self._rewind_from[tp] = min(first, self._rewind_from.get(tp, first))
        if data:
            self._log.info(
                "fetch_discarded",
                reason="rebalance",
                records=sum(len(records) for records in data.values()),
                partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in data),
            )

    async def _seek_assigned(self, stop: asyncio.Event) -> None:
        """Seek to committed offsets; without one, to the first record discarded, if any."""
        consumer = self._consumer
        generation = self._generation
        partitions = sorted(self._to_seek & set(consumer.assignment()))
        request = asyncio.gather(*(consumer.committed(tp) for tp in partitions))
        watch = self._liveness.watch
        try:
            committed = await watch.ask(request, KAFKA_REQUEST_TIMEOUT * 2, "committed offsets")
        except KafkaUnanswered:
            with contextlib.suppress(TimeoutError):  # pacing while the broker does not answer
                await asyncio.wait_for(stop.wait(), 0.5)
            return
        if generation != self._generation or self._rebalancing():
            return  # a newer assignment seeks again
        assignment = set(consumer.assignment())
        for tp, offset in zip(partitions, committed, strict=True):
            target = offset if offset is not None else self._rewind_from.get(tp)
            if target is not None and tp in assignment:
                consumer.seek(tp, target)
        self._to_seek.clear()
        self._rewind_from.clear()
        self._liveness.restart()

    def _pause(self, *, backpressure: bool = True) -> None:
        todo = set(self._consumer.assignment()) - self._paused
        if todo:
            self._consumer.pause(*todo)
            self._paused |= todo
            if backpressure:
                self.pauses += 1
            self._log.debug("fetch_paused", partitions=len(self._paused))

    def _resume(self) -> None:
        if self._paused:
            self._consumer.resume(*(self._paused & set(self._consumer.assignment())))
            self._paused.clear()

"""Reading a topic once, resumably: from a group's committed offsets to the end offsets at start.

:class:`BoundedReader` is the dead-letter side of ``packflow-worker redrive``. It is assigned
every partition of the topic (no group join, so no rebalance wait; one reader per group at a
time), reads the end offsets before anything else and hands out only messages below them: a
message written later waits for the next run. Its caller says which messages it handled
(:meth:`BoundedReader.handled`); :meth:`BoundedReader.commit` commits those positions, so the
next reader of the group starts at the first message not handled.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from worker._backoff import Backoff
from worker._kafka import ask, commit_offsets, getmany
from worker.errors import KafkaFatalError

__all__ = ["BoundedReader"]

_FETCH_MS = 500


class BoundedReader:
    """Reads ``topic`` with ``consumer`` (group ``group``, auto-commit off) up to its end."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str, group: str) -> None:
        self._consumer = consumer
        self._topic = topic
        self._group = group
        self._end: dict[TopicPartition, int] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._pending: set[TopicPartition] = set()

    async def start(self, partitions: int, seconds: float) -> None:
        """Assign the ``partitions`` of the topic, read their end offsets, then the group's
        positions (its committed offsets, else the beginning). Raises
        :class:`~worker.errors.KafkaUnanswered` or an authorization error."""
        consumer = self._consumer
        tps = [TopicPartition(self._topic, p) for p in range(partitions)]
        consumer.assign(tps)
        what = f"reading the end offsets of {self._topic!r}"
        self._end = await ask(consumer.end_offsets(tps), seconds, what)
        for tp in tps:
            what = f"reading group {self._group!r}'s position on {self._topic}/{tp.partition}"
            self._next[tp] = await ask(consumer.position(tp), seconds, what)
        self._committed = dict(self._next)
        self._pending = {tp for tp in tps if self._next[tp] < self._end[tp]}
        if done := set(tps) - self._pending:
            consumer.pause(*done)

    @property
    def end_offsets(self) -> dict[int, int]:
        """Partition -> end offset, as read at the start."""
        return {tp.partition: end for tp, end in self._end.items()}

    @property
    def done(self) -> bool:
        """Every partition was read up to its end offset."""
        return not self._pending

    def positions(self) -> str:
        """``partition@next offset`` of the partitions not done, for messages."""
        return ", ".join(f"{tp.partition}@{self._next[tp]}" for tp in sorted(self._pending))

    async def fetch(self, max_records: int) -> list[ConsumerRecord[bytes, bytes]]:
        """The next messages below the end offsets (at most ``max_records``; may be none).

        Raises :class:`~worker.errors.AuthorizationError` when reading is refused.
        """
        fetched = await getmany(
            self._consumer, _FETCH_MS, max_records, topic=self._topic, group=self._group
        )
        chunk = [
            record
            for tp, records in fetched.items()
            for record in records
            if record.offset < self._end[tp]
        ]
        for tp in list(self._pending):
            # the position also moves past transaction markers, which are no messages
            if await self._consumer.position(tp) >= self._end[tp]:
                self._pending.discard(tp)
                self._consumer.pause(tp)
        return chunk

    def handled(self, offsets: dict[TopicPartition, int]) -> None:
        """Each partition's messages before ``offsets[tp]`` are handled: commit past them."""
        self._next.update(offsets)

    async def commit(self, seconds: float) -> str:
        """Commit the handled positions that moved, retrying for up to ``seconds``; returns ""
        on success, else why it failed."""
        offsets = {tp: n for tp, n in self._next.items() if n > self._committed[tp]}
        if not offsets:
            return ""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        backoff = Backoff(initial=0.2, maximum=2.0)
        while True:
            try:
                reason = await commit_offsets(self._consumer, offsets, self._group)
            except KafkaFatalError as exc:
                return str(exc)
            if not reason:
                self._committed.update(offsets)
                return ""
            if loop.time() + backoff.peek() > deadline:
                return f"committing the offsets of group {self._group!r} failed: {reason}"
            await asyncio.sleep(backoff.next_delay())

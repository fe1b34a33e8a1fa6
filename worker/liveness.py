"""Progress, fetch stalls and the broker's reachability: what ``/readyz`` says of the pipeline.

Progress is a fetch that returned messages, a settled batch, or, while the topic is idle, a
check of the end offsets showing no lag (in exactly-once delivery the consumer reads
committed, so its end offsets are the last stable offsets and an open input transaction is
not lag). aiokafka's fetcher can stall silently (aio-libs/aiokafka#1037): lag on a partition
that is not paused, with nothing fetched for a while (beyond ``fetch_wait``, how long the
broker may hold a fetch for ``--fetch-min-bytes``), logs ``fetch_stalled`` and, once it
lasts ``readiness_stall_seconds``, makes the worker unready. A request that gets no answer is
never progress (:class:`~worker.connectivity.BrokerWatch`). The timers restart when an
assignment completes, so a rebalance is not a stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from worker.connectivity import BrokerWatch
from worker.errors import KafkaUnanswered

__all__ = ["KAFKA_REQUEST_TIMEOUT", "Liveness"]

KAFKA_REQUEST_TIMEOUT = 5.0
"""Seconds a lag check or probe may take before the broker counts as not answering."""


class Liveness:
    """Tracks progress and reachability for one consumer; see the module docstring."""

    def __init__(self, stall_seconds: float, logger: Any, *, fetch_wait: float = 0.0) -> None:
        self._stall = stall_seconds
        self._interval = min(5.0, stall_seconds / 3)
        self._fetch_wait = fetch_wait
        self._log = logger
        self.watch = BrokerWatch(logger)
        now = time.monotonic()
        self._last_progress = self._idle_since = self._last_idle_check = now

    def fetched(self) -> None:
        """A fetch returned messages."""
        self._last_progress = self._idle_since = time.monotonic()
        self.watch.reached()

    def progressed(self) -> None:
        """A batch settled or offsets were committed: the broker answered."""
        self._last_progress = time.monotonic()
        self.watch.reached()

    def restart(self) -> None:
        """An assignment completed: idle and stall timers start again."""
        self._last_progress = self._idle_since = self._last_idle_check = time.monotonic()

    def reasons(self) -> list[str]:
        """Why the pipeline is not ready (empty when it is)."""
        reasons = []
        unreachable = self.watch.unreachable_for()
        if unreachable is not None and unreachable > self._stall:
            reasons.append(f"Kafka unreachable for {unreachable:.0f} s")
        stalled = time.monotonic() - self._last_progress
        if stalled > self._stall:
            reasons.append(f"no fetch progress for {stalled:.0f}s")
        return reasons

    async def check_idle(self, consumer: AIOKafkaConsumer, paused: set[TopicPartition]) -> None:
        """After an empty fetch: every ``interval`` seconds idle, look for lag (a stall)."""
        now = time.monotonic()
        interval = self._interval
        # Records the broker holds back while a fetch waits for --fetch-min-bytes are lag too.
        if now - self._idle_since < interval + self._fetch_wait:
            return
        if now - self._last_idle_check < interval:
            return
        self._last_idle_check = now
        lagging = await self._lagging(consumer, set(consumer.assignment()) - paused)
        if lagging is None:  # the broker did not answer: never progress
            return
        if not lagging:
            self._last_progress = now
            return
        self._log.warning(
            "fetch_stalled",
            partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in lagging),
            idle_s=round(now - self._idle_since, 1),
        )

    async def _lagging(
        self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]
    ) -> set[TopicPartition] | None:
        """``partitions`` with messages beyond the position; None when Kafka did not answer."""
        if not partitions:
            return set()

        async def lagging() -> set[TopicPartition]:
            ends = await consumer.end_offsets(list(partitions))
            return {tp for tp in partitions if ends.get(tp, 0) > await consumer.position(tp)}

        try:
            return await self.watch.ask(lagging(), KAFKA_REQUEST_TIMEOUT, "lag check")
        except KafkaUnanswered:
            return None

    async def watch_loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Until ``stop``: probe the broker (metadata) when it has been quiet for a while."""
        interval = self._interval
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(1.0, interval))
            if stop.is_set() or self.watch.quiet_for() < interval:
                continue
            with contextlib.suppress(KafkaUnanswered):
                await self.watch.ask(consumer.topics(), KAFKA_REQUEST_TIMEOUT, "metadata probe")

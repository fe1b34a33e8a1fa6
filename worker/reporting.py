"""The ``batch_metrics`` event of each settled batch: figures filled, logged and published."""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from worker._kafka import highwater
from worker.backpressure import InFlightBudget
from worker.delivery import Settled
from worker.metrics import BATCH_METRICS_EVENT, BatchStats, batch_metrics
from worker.publisher import Publisher

__all__ = ["BatchReporter"]


class BatchReporter:
    """Completes a batch's :class:`BatchStats` and emits them (stdout, metrics topic)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        publisher: Publisher,
        budget: InFlightBudget,
        *,
        backend: str,
        worker_id: str,
        recent: collections.deque[dict[str, Any]],
        logger: Any,
    ) -> None:
        self._consumer = consumer
        self._publisher = publisher
        self._budget = budget
        self._backend = backend
        self._worker_id = worker_id
        self._recent = recent
        self._log = logger

    def fill(self, stats: BatchStats, settled: Settled) -> None:
        """Outcomes, latency, lag and in-flight figures (call before releasing the budget)."""
        stats.outputs, stats.dead_letters = settled.outputs, settled.dead_letters
        stats.records_out = settled.records_out
        inputs = settled.inputs
        timestamps = np.fromiter([r.timestamp for r in inputs], np.float64, len(inputs))
        stats.latencies_ms = time.time() * 1000.0 - timestamps[timestamps >= 0]
        for r in stats.partitions:
            end = highwater(self._consumer, TopicPartition(r.topic, r.partition))
            if end is not None:
                stats.consumer_lag[f"{r.topic}/{r.partition}"] = max(0, end - r.last_offset - 1)
        stats.in_flight_records = self._budget.records
        stats.in_flight_bytes = self._budget.bytes

    async def emit(self, stats: BatchStats) -> None:
        """Log the event on stdout and publish it to the metrics topic (if any)."""
        fields = batch_metrics(stats, backend=self._backend, worker_id=self._worker_id)
        self._recent.append(fields)
        self._log.info(BATCH_METRICS_EVENT, **{k: v for k, v in fields.items() if k != "worker_id"})
        await self._publisher.publish_event({"event": BATCH_METRICS_EVENT, **fields})

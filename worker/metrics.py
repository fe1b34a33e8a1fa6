"""The ``batch_metrics`` event: one per processed batch, on stdout and the metrics topic."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BATCH_METRICS_EVENT",
    "BatchStats",
    "PartitionRange",
    "batch_metrics",
    "partition_ranges",
    "percentile",
]

BATCH_METRICS_EVENT = "batch_metrics"


Latencies = npt.NDArray[np.float64] | Sequence[float]
"""Milliseconds, one per message: an array (as the worker fills them) or a sequence."""


def percentile(values: Latencies, q: float) -> float | None:
    """The ``q``-th percentile (0-100) by the nearest-rank method; ``None`` for no values."""
    if len(values) == 0:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0 and 100, got {q}")
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def _max(values: Latencies) -> float | None:
    return float(np.max(values)) if len(values) else None


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """The offsets of one input partition covered by a batch."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int


@dataclass(slots=True)
class BatchStats:
    """What one batch did; filled by the pipeline, turned into an event by :func:`batch_metrics`."""

    batch_size: int = 0
    records_in: int = 0
    records_out: int = 0
    outputs: int = 0
    dead_letters: int = 0
    steps_ms: dict[str, float] = field(default_factory=dict)
    executor_queue_wait_ms: float = 0.0
    backend_calls: int = 0
    failed_backend_calls: int = 0
    decode_ms: float = 0.0
    publish_ms: float = 0.0
    latencies_ms: Latencies = field(default_factory=list)
    partitions: list[PartitionRange] = field(default_factory=list)
    consumer_lag: dict[str, int] = field(default_factory=dict)
    in_flight_records: int = 0
    in_flight_bytes: int = 0
    backend_retries: int = 0
    timed_out_calls: int = 0
    breaker_retries: int = 0
    breaker_held_ms: float = 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def batch_metrics(stats: BatchStats, *, backend: str, worker_id: str) -> dict[str, Any]:
    """Build the ``batch_metrics`` fields (without the ``event`` key) for one batch."""
    return {
        "backend": backend,
        "worker_id": worker_id,
        "batch_size": stats.batch_size,
        "records_in": stats.records_in,
        "records_out": stats.records_out,
        "outputs": stats.outputs,
        "dead_letters": stats.dead_letters,
        "steps_ms": {name: _round(ms) for name, ms in stats.steps_ms.items()},
        "executor_queue_wait_ms": _round(stats.executor_queue_wait_ms),
        "backend_calls": stats.backend_calls,
        "failed_backend_calls": stats.failed_backend_calls,
        "backend_retries": stats.backend_retries,
        "timed_out_calls": stats.timed_out_calls,
        "breaker_retries": stats.breaker_retries,
        "breaker_held_ms": _round(stats.breaker_held_ms),
        "decode_ms": _round(stats.decode_ms),
        "publish_ms": _round(stats.publish_ms),
        "latency_ms": {
            "p50": _round(percentile(stats.latencies_ms, 50)),
            "max": _round(_max(stats.latencies_ms)),
        },
        "partitions": [
            {
                "topic": r.topic,
                "partition": r.partition,
                "first_offset": r.first_offset,
                "last_offset": r.last_offset,
            }
            for r in stats.partitions
        ],
        "consumer_lag": dict(stats.consumer_lag),
        "in_flight_records": stats.in_flight_records,
        "in_flight_bytes": stats.in_flight_bytes,
    }


def partition_ranges(offsets: Iterable[tuple[str, int, int]]) -> list[PartitionRange]:
    """Collapse ``(topic, partition, offset)`` triples into one range per partition."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for topic, partition, offset in offsets:
        span = ranges.get((topic, partition))
        if span is None:
            ranges[(topic, partition)] = [offset, offset]
        else:
            span[0] = min(span[0], offset)
            span[1] = max(span[1], offset)
    return [PartitionRange(t, p, lo, hi) for (t, p), (lo, hi) in sorted(ranges.items())]

"""``GET /metrics``: the worker's figures in Prometheus' text format (``prometheus-client``).

Each worker has its own :class:`~prometheus_client.CollectorRegistry` (nothing global, so
several workers in one process, as in the tests, do not mix). Per-batch figures are counted
and observed when a batch is reported (:meth:`WorkerMetrics.observe_batch`, from the same
:class:`~worker.metrics.BatchStats` as the ``batch_metrics`` event, so both always agree).
Figures the worker already keeps (commits, rebalances, in-flight, partitions, readiness) are
read when Prometheus scrapes, by a collector asking :class:`WorkerState`.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from worker.metrics import BatchStats

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "WorkerMetrics", "WorkerState"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "packflow_"
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds (seconds) of the end-to-end latency histogram's buckets."""
_BATCH = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


@dataclass(slots=True)
class WorkerState:
    """What the worker knows now, read at each scrape."""

    ready: bool = False
    in_flight_records: int = 0
    in_flight_bytes: int = 0
    assigned_partitions: int = 0
    paused_partitions: int = 0
    commits: int = 0
    rebalances: int = 0
    breaker_open: bool = False
    breaker_open_seconds: float = 0.0
    breaker_trips: int = 0
    consumer_lag: dict[tuple[str, int], int] = field(default_factory=dict)


class _StateCollector(Collector):
    def __init__(self, read: Callable[[], WorkerState]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        state = self._read()
        yield from _gauges(state)
        yield _counter("commits", "Offset commits (exactly-once: transactions)", state.commits)
        yield _counter("rebalances", "Partition assignments completed", state.rebalances)
        yield _counter("breaker_trips", "Times the breaker opened", state.breaker_trips)
        yield _counter(
            "breaker_open_seconds",
            "Seconds the breaker held a batch, in all",
            state.breaker_open_seconds,
        )


def _gauges(state: WorkerState) -> Iterator[Metric]:
    for name, doc, value in (
        ("ready", "1 when /readyz answers 200", float(state.ready)),
        ("in_flight_records", "Messages fetched and not yet settled", state.in_flight_records),
        ("in_flight_bytes", "Message bytes fetched and not yet settled", state.in_flight_bytes),
        ("assigned_partitions", "Input partitions assigned", state.assigned_partitions),
        ("paused_partitions", "Input partitions paused", state.paused_partitions),
        ("breaker_open", "1 while the breaker holds a batch", float(state.breaker_open)),
    ):
        yield GaugeMetricFamily(_PREFIX + name, doc, value=value)
    lag = GaugeMetricFamily(
        _PREFIX + "consumer_lag",
        "Messages behind the high watermark, per input partition (at the last batch)",
        labels=["topic", "partition"],
    )
    for (topic, partition), value in sorted(state.consumer_lag.items()):
        lag.add_metric([topic, str(partition)], value)
    yield lag


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(_PREFIX + name, doc, value=value)


class _BatchHistogram(Collector):
    """A histogram fed a batch of values at once (one value per message: ``Histogram.observe``
    costs about 1 us each, this about 20 us per batch of 500)."""

    def __init__(self, name: str, doc: str, buckets: tuple[float, ...]) -> None:
        self._name = name
        self._doc = doc
        self._bounds = np.asarray(buckets, dtype=float)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last: above them all
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: np.ndarray) -> None:
        """Count each of ``values``."""
        index = np.searchsorted(self._bounds, values, side="left")  # le: upper bound included
        counts = np.bincount(index, minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        buckets = [(_le(b), int(c)) for b, c in zip(self._bounds, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", int(cumulative[-1])))
        yield HistogramMetricFamily(self._name, self._doc, buckets=buckets, sum_value=total)


def _le(bound: float) -> str:
    return repr(float(bound))


class WorkerMetrics:
    """The registry of one worker and the per-batch metrics in it."""

    def __init__(self, read_state: Callable[[], WorkerState]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(_PREFIX + name, doc, labels, registry=r)

        self.messages_in = counter("messages_in", "Kafka messages taken in batches")
        self.records_in = counter("records_in", "Records decoded from the messages")
        self.records_out = counter("records_out", "Records in published outputs")
        self.outputs = counter("outputs", "Output messages published")
        self.dead_letters = counter(
            "dead_letters", "Dead letters published", ("step", "error_type")
        )
        self.backend_calls = counter("backend_calls", "Backend calls")
        self.failed_calls = counter("backend_failed_calls", "Backend calls that failed")
        self.retries = counter("backend_retries", "Retries of transiently failing calls")
        self.timeouts = counter("backend_timeouts", "Backend calls past the call timeout")
        self.batches = counter("batches", "Batches settled")
        self.steps = Histogram(
            _PREFIX + "step_duration_seconds",
            "Seconds per batch in each pipeline step (decode, the backend's steps, publish)",
            ("step",),
            buckets=_SECONDS,
            registry=r,
        )
        self.batch_size = Histogram(
            _PREFIX + "batch_size_messages", "Messages per batch", buckets=_BATCH, registry=r
        )
        self.latency = _BatchHistogram(
            _PREFIX + "end_to_end_latency_seconds",
            "From an input message's timestamp to its outcome's acknowledgement",
            LATENCY_BUCKETS,
        )
        r.register(self.latency)
        self.publish = Histogram(
            _PREFIX + "publish_duration_seconds",
            "Seconds from encoding a batch's outcomes to their acknowledgement",
            buckets=_SECONDS,
            registry=r,
        )
        r.register(_StateCollector(read_state))

    def observe_batch(self, stats: BatchStats, letters: Iterable[tuple[str, str]]) -> None:
        """Count one reported batch; ``letters`` are its dead letters' (step, error type)."""
        self.batches.inc()
        self.messages_in.inc(stats.batch_size)
        self.records_in.inc(stats.records_in)
        self.records_out.inc(stats.records_out)
        self.outputs.inc(stats.outputs)
        for (step, error_type), count in collections.Counter(letters).items():
            self.dead_letters.labels(step, error_type).inc(count)
        self.backend_calls.inc(stats.backend_calls)
        self.failed_calls.inc(stats.failed_backend_calls)
        self.retries.inc(stats.backend_retries)
        self.timeouts.inc(stats.timed_out_calls)
        self.batch_size.observe(stats.batch_size)
        self.steps.labels("decode").observe(stats.decode_ms / 1000.0)
        for step, ms in stats.steps_ms.items():
            self.steps.labels(step).observe(ms / 1000.0)
        self.steps.labels("publish").observe(stats.publish_ms / 1000.0)
        self.publish.observe(stats.publish_ms / 1000.0)
        if len(stats.latencies_ms):
            self.latency.observe_many(np.asarray(stats.latencies_ms, dtype=np.float64) / 1000.0)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return bytes(generate_latest(self.registry))

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.metrics import BatchStats

__all__ = ["CONTENT_TYPE", "WorkerMetrics", "WorkerState"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "packflow_"
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
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
        self.latency = Histogram(
            _PREFIX + "end_to_end_latency_seconds",
            "From an input message's timestamp to its outcome's acknowledgement",
            buckets=_LATENCY,
            registry=r,
        )
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
        observe = self.latency.observe
        for ms in stats.latencies_ms:
            observe(ms / 1000.0)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return bytes(generate_latest(self.registry))

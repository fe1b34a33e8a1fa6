"""The worker's Prometheus registry: batch-fed histograms equal prometheus-client's own."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from worker.metrics import BatchStats
from worker.prometheus import LATENCY_BUCKETS, WorkerMetrics, WorkerState


def _samples(text: str, family: str) -> dict[tuple[str, str], float]:
    (found,) = [f for f in text_string_to_metric_families(text) if f.name == family]
    return {(s.name, s.labels.get("le", "")): s.value for s in found.samples}


def test_the_batch_fed_latency_histogram_equals_one_observe_per_value():
    rng = np.random.default_rng(5)
    batches = [[*rng.exponential(40.0, size=n), 5.0, 10.0, 0.0] for n in (1, 50, 500)]
    metrics = WorkerMetrics(lambda: WorkerState())
    registry = CollectorRegistry()
    reference = Histogram(
        "packflow_end_to_end_latency_seconds", "ref", buckets=LATENCY_BUCKETS, registry=registry
    )
    for latencies in batches:
        stats = BatchStats(batch_size=len(latencies))
        stats.latencies_ms = latencies
        metrics.observe_batch(stats, [])
        for ms in latencies:
            reference.observe(ms / 1000.0)
    ours = _samples(metrics.render().decode(), "packflow_end_to_end_latency_seconds")
    theirs = _samples(generate_latest(registry).decode(), "packflow_end_to_end_latency_seconds")
    theirs = {k: v for k, v in theirs.items() if not k[0].endswith("_created")}
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert abs(ours[key] - value) < 1e-9, key

"""GET /metrics of a running worker, parsed by prometheus_client's own parser, agrees with the
batch_metrics events of the same run."""

from __future__ import annotations

import asyncio
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Poison, consume, produce, running_worker, wait_for

pytestmark = pytest.mark.kafka


def _scrape(port: int) -> tuple[str, dict[str, list]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    return content_type, families


def _value(families, name: str, **labels) -> float:
    """The value of the one sample called ``name`` with exactly ``labels``."""
    found = [
        s.value
        for samples in families.values()
        for s in samples
        if s.name == name and s.labels == labels
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_a_scrape_agrees_with_the_batch_metrics_events(
    kafka_bootstrap, topics, worker_settings, delivery
):
    names = await topics(2)
    values = [
        orjson.dumps({"id": i, "poison": i % 25 == 7})
        if i % 10
        else b"[" + orjson.dumps({"id": i}) + b"," + orjson.dumps({"id": -i}) + b"]"
        for i in range(120)
    ]
    values[3] = b"not json"
    await produce(
        kafka_bootstrap, names["input_topic"], [(str(i).encode(), v) for i, v in enumerate(values)]
    )
    settings = worker_settings(**names, delivery=delivery, max_batch_size=16)
    async with running_worker(settings, Poison()) as worker:
        await consume(
            kafka_bootstrap, names["output_topic"], 114, within=60, isolation_level="read_committed"
        )
        await wait_for(
            lambda: sum(m["batch_size"] for m in worker.recent_metrics) == 120,
            30,
            "every batch reported",
        )
        content_type, families = await asyncio.to_thread(_scrape, worker.health_port)
        events = list(worker.recent_metrics)
    assert content_type.startswith("text/plain; version=0.0.4")

    def total(key: str) -> float:
        return float(sum(e[key] for e in events))

    assert _value(families, "packflow_messages_in_total") == total("batch_size") == 120
    assert _value(families, "packflow_records_in_total") == total("records_in")
    assert _value(families, "packflow_records_out_total") == total("records_out")
    assert _value(families, "packflow_outputs_total") == total("outputs")
    assert _value(families, "packflow_backend_calls_total") == total("backend_calls")
    assert _value(families, "packflow_backend_failed_calls_total") == total("failed_backend_calls")
    assert _value(families, "packflow_batches_total") == len(events)
    letters = {
        (s.labels["step"], s.labels["error_type"]): s.value
        for s in families["packflow_dead_letters"]
        if s.name == "packflow_dead_letters_total"
    }
    assert sum(letters.values()) == total("dead_letters") == 6
    assert letters[("decode", "InvalidJsonError")] == 1
    assert letters[("execute", "ValueError")] == 5
    assert _value(families, "packflow_batch_size_messages_count") == len(events)
    assert _value(families, "packflow_batch_size_messages_sum") == 120
    assert _value(families, "packflow_end_to_end_latency_seconds_count") == 120
    assert _value(families, "packflow_step_duration_seconds_count", step="decode") == len(events)
    assert _value(families, "packflow_commits_total") >= 1
    assert _value(families, "packflow_rebalances_total") == worker.assignments >= 1
    assert _value(families, "packflow_assigned_partitions") == 2
    assert _value(families, "packflow_ready") == 1
    assert _value(families, "packflow_breaker_open") == 0
    assert _value(families, "packflow_in_flight_records") == 0
    lags = {s.labels["partition"]: s.value for s in families["packflow_consumer_lag"]}
    assert set(lags) == {"0", "1"}
    assert all(v == 0 for v in lags.values())

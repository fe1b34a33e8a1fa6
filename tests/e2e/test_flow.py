"""Metrics events, backpressure, and per-key order across partitions and a rebalance."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest

from packflow.testing import capture_metric_events
from tests.e2e.conftest import Identity, Slow, consume, produce, running_worker, wait_for

pytestmark = pytest.mark.kafka


async def test_one_batch_metrics_event_per_batch_on_the_metrics_topic(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(2, metrics=True)
    messages = [(f"k{i}".encode(), orjson.dumps({"id": i})) for i in range(40)]
    messages.append((b"bad", b"not json"))
    await produce(kafka_bootstrap, names["input_topic"], messages)
    with capture_metric_events() as logged:
        async with running_worker(worker_settings(**names), Identity()) as worker:
            await consume(kafka_bootstrap, names["output_topic"], 40)
            await wait_for(lambda: sum(m["batch_size"] for m in logged) == 41, 20, "41 logged")
            events = await consume(kafka_bootstrap, names["metrics_topic"], worker.batches + 1)
    starting, *bodies = [orjson.loads(e.value) for e in events]
    assert starting["event"] == "worker_starting"  # the start-up proof of Write on the topic
    assert (starting["worker_id"], starting["backend"]) == ("test-worker", "Identity")
    assert [{k: v for k, v in e.items() if k != "log_level"} for e in logged] == bodies
    assert len(bodies) == worker.batches
    assert sum(b["batch_size"] for b in bodies) == 41
    assert sum(b["dead_letters"] for b in bodies) == 1
    assert sum(b["records_out"] for b in bodies) == 40
    for body in bodies:
        assert body["event"] == "batch_metrics"
        assert body["backend"] == "Identity"
        assert body["worker_id"] == "test-worker"
        assert {"preprocess", "execute"} <= set(body["steps_ms"]) or body["records_in"] == 0
        assert body["executor_queue_wait_ms"] >= 0
        assert body["latency_ms"]["max"] >= body["latency_ms"]["p50"] >= 0
        for part in body["partitions"]:
            assert part["topic"] == names["input_topic"]
            assert part["first_offset"] <= part["last_offset"]
            assert f"{part['topic']}/{part['partition']}" in body["consumer_lag"]


async def test_in_flight_records_never_exceed_the_bound_and_fetching_pauses(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(2)
    settings = worker_settings(**names, max_batch_size=7, max_in_flight_records=10)
    messages = [(f"k{i % 5}".encode(), orjson.dumps({"id": i})) for i in range(300)]
    await produce(kafka_bootstrap, names["input_topic"], messages)
    # A fast backend: fetching outpaces the broker's acknowledgements and reaches the bound
    # (a 10 ms backend call no longer does: a batch's outputs are acknowledged sooner).
    async with running_worker(settings, Identity()) as worker:
        outputs = await consume(kafka_bootstrap, names["output_topic"], 300)
    assert sorted(orjson.loads(o.value)["id"] for o in outputs) == list(range(300))
    assert worker.budget.peak_records <= 10
    assert worker.pauses >= 1
    assert max(m["in_flight_records"] for m in worker.recent_metrics) <= 10
    assert max(m["batch_size"] for m in worker.recent_metrics) <= 7


async def test_per_key_order_holds_across_partitions_and_a_rebalance(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(3, output_partitions=2)
    keys = [f"key-{k}".encode() for k in range(8)]
    per_key = 150
    settings = worker_settings(**names, max_batch_size=50)
    backend = Slow()
    backend.sleep_s = 0.005
    backend.always = True
    first = [
        (key, orjson.dumps({"key": key.decode(), "seq": s}))
        for s in range(per_key // 2)
        for key in keys
    ]
    second = [
        (key, orjson.dumps({"key": key.decode(), "seq": s}))
        for s in range(per_key // 2, per_key)
        for key in keys
    ]
    total = len(first) + len(second)
    async with running_worker(settings, backend) as one:
        await produce(kafka_bootstrap, names["input_topic"], first)
        await wait_for(lambda: one.batches >= 2, 30, "the first batches")
        async with running_worker(settings.model_copy(update={"worker_id": "w2"}), Identity()):
            await produce(kafka_bootstrap, names["input_topic"], second)
            outputs = await consume(kafka_bootstrap, names["output_topic"], total, settle=1.0)
        assert one.assignments >= 2, "the second worker did not cause a rebalance"
    seen: dict[str, list[int]] = defaultdict(list)
    for out in outputs:  # consume() returns each output partition in order
        body = orjson.loads(out.value)
        assert out.key == body["key"].encode()
        seen[body["key"]].append(body["seq"])
    for key in keys:
        seqs = seen[key.decode()]
        assert seqs == list(range(per_key)), f"{key!r}: order broken or duplicates: {seqs[:20]}"
    assert len(outputs) == total
    # every key's outputs sit in one output partition
    partitions = defaultdict(set)
    for out in outputs:
        partitions[out.key].add(out.partition)
    assert all(len(p) == 1 for p in partitions.values())

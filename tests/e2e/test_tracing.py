"""OpenTelemetry: a span per batch linked to its inputs' traceparent, child spans per step and
backend call, outputs and dead letters carrying the batch's context (in-memory exporter)."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.e2e.conftest import Poison, consume, produce, running_worker

pytestmark = pytest.mark.kafka

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _traceparent(i: int) -> bytes:
    return f"00-{TRACE_ID}-{i + 1:016x}-01".encode()


async def test_a_batch_span_links_its_inputs_and_its_outputs_carry_its_context(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    values = [orjson.dumps({"id": i, "poison": i == 2}) for i in range(4)]
    for i, value in enumerate(values):
        await produce(
            kafka_bootstrap,
            names["input_topic"],
            [(b"k", value)],
            headers=[("traceparent", _traceparent(i))],
        )
    settings = worker_settings(**names, max_batch_size=10, max_batch_wait_ms=500)
    backend = Poison()
    async with running_worker(settings, backend, tracer_provider=provider):
        outputs = await consume(kafka_bootstrap, names["output_topic"], 3, within=30)
        letters = await consume(kafka_bootstrap, names["dlq_topic"], 1, within=30)
    spans = exporter.get_finished_spans()
    batches = [s for s in spans if s.name == f"process {names['input_topic']}"]
    assert batches, [s.name for s in spans]
    linked = {link.context.span_id for b in batches for link in b.links}
    assert linked == {i + 1 for i in range(4)}
    assert all(link.context.trace_id == int(TRACE_ID, 16) for b in batches for link in b.links)
    batch = next(b for b in batches if len(b.links) == 4)
    assert batch.kind is SpanKind.CONSUMER
    assert batch.attributes["messaging.system"] == "kafka"
    assert batch.attributes["messaging.operation.type"] == "process"
    assert batch.attributes["messaging.destination.name"] == names["input_topic"]
    assert batch.attributes["messaging.consumer.group.name"] == settings.group_id
    assert batch.attributes["messaging.batch.message_count"] == 4
    assert (batch.attributes["packflow.outputs"], batch.attributes["packflow.dead_letters"]) == (
        3,
        1,
    )
    children = [
        s for s in spans if s.parent is not None and s.parent.span_id == batch.context.span_id
    ]
    names_of_children = sorted(s.name for s in children)
    assert "decode" in names_of_children
    assert "publish" in names_of_children
    calls = [s for s in children if s.name == "backend call"]
    assert len(calls) >= 3  # the failing call and poison isolation's calls
    assert any(not c.status.is_ok for c in calls)
    steps = [
        s
        for s in spans
        if s.parent is not None and s.parent.span_id in {c.context.span_id for c in calls}
    ]
    assert {"execute"} <= {s.name for s in steps}

    def parent_of(record) -> str:
        parts = dict(record.headers)["traceparent"].decode().split("-")
        return f"{parts[1]}-{parts[2]}"

    contexts = {f"{b.context.trace_id:032x}-{b.context.span_id:016x}" for b in batches}
    assert {parent_of(r) for r in [*outputs, *letters]} <= contexts
    own = f"{batch.context.trace_id:032x}-{batch.context.span_id:016x}"
    assert any(parent_of(o) == own for o in outputs)

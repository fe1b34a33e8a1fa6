"""OpenTelemetry traces of batches (the ``otel`` extra: ``pip install 'packflow[otel]'``).

One ``process`` span per batch, linked to each input message's W3C ``traceparent``; child spans
for decoding, for each backend call (poison isolation makes several), for the backend's steps
inside a call, and for publishing. Outputs and dead letters carry the batch span's context in
their ``traceparent`` header. Attributes follow OpenTelemetry's messaging conventions.

Only :func:`tracer_from_env` is imported by the worker; it imports OpenTelemetry only when
tracing is on, so without the extra, or with it disabled, nothing is imported or spent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from worker.pipeline import Batch

__all__ = ["BatchTracer", "CallSpan"]

_TRACE_HEADERS = ("traceparent", "tracestate")


class CallSpan:
    """The span of one backend call; its steps become child spans once their times are known."""

    def __init__(self, tracer: trace.Tracer, span: Span, started_ns: int) -> None:
        self._tracer = tracer
        self._span = span
        self._started_ns = started_ns

    def steps(self, times_ms: Mapping[str, float]) -> None:
        """Add a child span per step, laid end to end from the call's start (they run in turn)."""
        context = trace.set_span_in_context(self._span)
        start = self._started_ns
        for name, ms in times_ms.items():
            end = start + int(ms * 1_000_000)
            child = self._tracer.start_span(name, context=context, start_time=start)
            child.set_attribute("packflow.step", name)
            child.end(end_time=end)
            start = end

    def failed(self, exc: BaseException) -> None:
        """Mark the call failed with ``exc``."""
        self._span.record_exception(exc)
        self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class BatchTracer:
    """Spans of the worker's batches on ``provider`` (an SDK ``TracerProvider``)."""

    def __init__(self, provider: Any, *, topic: str, group: str, backend: str) -> None:
        self._tracer = provider.get_tracer("packflow.worker")
        self._topic = topic
        self._group = group
        self._backend = backend

    @contextlib.contextmanager
    def batch(self, batch: Batch) -> Iterator[Span]:
        """The batch's span, current while the block runs (its children nest under it)."""
        links = []
        partitions = set()
        for message in batch.messages:
            record = message.record
            partitions.add(record.partition)
            carrier = {
                k: v.decode("latin-1") for k, v in (record.headers or ()) if k in _TRACE_HEADERS
            }
            if not carrier:
                continue
            context = trace.get_current_span(extract(carrier)).get_span_context()
            if context.is_valid:
                links.append(
                    Link(
                        context,
                        {
                            "messaging.destination.partition.id": str(record.partition),
                            "messaging.kafka.offset": record.offset,
                        },
                    )
                )
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": self._topic,
            "messaging.consumer.group.name": self._group,
            "messaging.batch.message_count": len(batch.messages),
            "packflow.backend": self._backend,
        }
        if len(partitions) == 1:
            attributes["messaging.destination.partition.id"] = str(next(iter(partitions)))
        with self._tracer.start_as_current_span(
            f"process {self._topic}", kind=SpanKind.CONSUMER, links=links, attributes=attributes
        ) as span:
            yield span
            letters = sum(1 for m in batch.messages if m.letter is not None)
            span.set_attribute("packflow.dead_letters", letters)
            span.set_attribute("packflow.outputs", len(batch.messages) - letters)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Span]:
        """A child span of the current batch for one of the worker's own steps."""
        with self._tracer.start_as_current_span(name, attributes={"packflow.step": name}) as span:
            yield span

    @contextlib.contextmanager
    def call(self, records: int) -> Iterator[CallSpan]:
        """A child span for one backend call of ``records`` records."""
        started = time.time_ns()
        with self._tracer.start_as_current_span(
            "backend call",
            attributes={"packflow.backend": self._backend, "packflow.records": records},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield CallSpan(self._tracer, span, started)

    def headers(self) -> list[tuple[str, bytes]]:
        """``traceparent`` (and ``tracestate``) of the current span, as Kafka headers."""
        carrier: dict[str, str] = {}
        inject(carrier)
        return [(k, v.encode("latin-1")) for k, v in carrier.items() if k in _TRACE_HEADERS]

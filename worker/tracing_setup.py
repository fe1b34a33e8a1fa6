"""Whether to trace, from the standard ``OTEL_*`` variables; imports OpenTelemetry only if so.

Tracing is on when ``OTEL_TRACES_EXPORTER=otlp`` or an OTLP endpoint variable
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, and
``OTEL_SDK_DISABLED`` is not ``true``. The exporter is OTLP over HTTP, configured by its own
``OTEL_EXPORTER_OTLP_*`` variables; the service name is ``OTEL_SERVICE_NAME`` (default
``packflow-worker``) and ``OTEL_RESOURCE_ATTRIBUTES`` adds to the resource.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from worker.errors import StartupError

if TYPE_CHECKING:
    from worker.tracing import BatchTracer

__all__ = ["tracer_from_env", "tracing_enabled"]

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """True when the ``OTEL_*`` variables ask for traces; raises :class:`StartupError` for an
    exporter the worker does not offer."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    if exporter and exporter != "otlp":
        raise StartupError(
            f"OTEL_TRACES_EXPORTER={exporter!r} is not offered: use otlp (or none); stdout "
            "carries the worker's JSON lines only"
        )
    return exporter == "otlp" or any(env.get(name, "").strip() for name in _ENDPOINTS)


def tracer_from_env(
    *, topic: str, group: str, backend: str, provider: Any | None = None
) -> tuple[BatchTracer | None, Any | None]:
    """The worker's tracer and the provider to shut down at exit, or ``(None, None)``.

    ``provider`` (an SDK ``TracerProvider``, e.g. with an in-memory exporter in tests) turns
    tracing on whatever the environment says.
    """
    if provider is None:
        if not tracing_enabled():
            return None, None
        if importlib.util.find_spec("opentelemetry.sdk") is None:
            raise StartupError(
                "tracing is configured (OTEL_* variables) but OpenTelemetry is not installed: "
                "pip install 'packflow[otel]'"
            )
        provider = _otlp_provider()
    from worker.tracing import BatchTracer  # only now: OpenTelemetry is present and wanted

    return BatchTracer(provider, topic=topic, group=group, backend=backend), provider


def _otlp_provider() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or "packflow-worker"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider

"""Tracing is chosen by the OTEL_* variables; without them OpenTelemetry is never imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from worker.errors import StartupError
from worker.tracing_setup import tracing_enabled


def test_tracing_is_off_without_otel_settings_and_refuses_an_unknown_exporter():
    assert not tracing_enabled({})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_SDK_DISABLED": "true"})
    assert not tracing_enabled({"OTEL_TRACES_EXPORTER": "none"})
    with pytest.raises(StartupError, match="OTEL_TRACES_EXPORTER='console' is not offered"):
        tracing_enabled({"OTEL_TRACES_EXPORTER": "console"})


def test_without_otel_settings_opentelemetry_is_never_imported():
    code = (
        "import sys, worker.app, worker.cli\n"
        "from worker.tracing_setup import tracer_from_env\n"
        "assert tracer_from_env(topic='t', group='g', backend='b') == (None, None)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"

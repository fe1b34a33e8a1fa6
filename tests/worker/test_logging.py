"""configure_logging: every line of the worker process, the SDK's loguru lines included, is
one JSON object on stdout; nothing reaches stderr."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging

    from packflow import InferenceBackend
    from packflow.logger import logger
    from worker._logging import configure_logging

    class Scorer(InferenceBackend):
        def initialize(self):
            self.logger.info("loading {} rows", 3)
            self.logger.success("ready")
            self.logger.debug("hidden at INFO")

        def execute(self, inputs):
            return inputs

    configure_logging("INFO")
    Scorer()
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed on record {}", 2)
    logger.bind(stage="warmup").warning("cold cache")
    logging.getLogger("aiokafka").warning("library line")
    """
)


def run_script() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "", "PYTHONPATH": ":".join(sys.path)},
    )


def test_sdk_and_backend_loguru_lines_become_json_lines_on_stdout_and_stderr_stays_empty():
    result = run_script()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert list(by_event) == [
        "loading 3 rows",
        "ready",
        "backend_initialized",
        "failed on record 2",
        "cold cache",
        "library_log",
    ]
    assert by_event["loading 3 rows"]["backend"] == "Scorer"
    assert by_event["ready"]["level"] == "info"  # loguru's SUCCESS, at the nearest level
    initialized = by_event["backend_initialized"]
    assert initialized["message"].startswith("Initialized Scorer in ")
    assert initialized["init_time_ms"] >= 0
    assert initialized["logger"] == "packflow.backend.base"
    failed = by_event["failed on record 2"]
    assert failed["level"] == "error"
    assert "ValueError: boom" in failed["exception"]
    assert by_event["cold cache"]["stage"] == "warmup"
    assert by_event["cold cache"]["level"] == "warning"

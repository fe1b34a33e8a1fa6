"""The SDK logs through loguru as packflow 0.4.x did: loguru's API, stderr, PACKFLOW_LOG_LEVEL."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from packflow import InferenceBackend
from packflow.logger import get_logger, logger
from packflow.testing import capture_logs


class Chatty(InferenceBackend):
    """Logs the way backends written for packflow 0.4.x (loguru) do."""

    def initialize(self) -> None:
        self.logger.info("loading {} from {}", "model.bin", "/models")
        self.logger.success("loaded in {secs:.1f} s", secs=1.25)
        self.logger.debug("not shown at the default level")
        self.logger.opt(lazy=True).warning("cache {} is cold", lambda: "A")
        self.logger.bind(stage="warmup").log("INFO", "{} warm-up rounds", 3)

    def execute(self, inputs: Any) -> Any:
        return inputs


def events(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["log_level"], e["event"]) for e in logs if e["event"] != "backend_initialized"]


def test_self_logger_takes_loguru_calls_and_binds_the_backend_name() -> None:
    with capture_logs() as logs:
        Chatty()
    assert events(logs) == [
        ("info", "loading model.bin from /models"),
        ("success", "loaded in 1.2 s"),
        ("debug", "not shown at the default level"),
        ("warning", "cache A is cold"),
        ("info", "3 warm-up rounds"),
    ]
    assert all(e["backend"] == "Chatty" for e in logs)
    assert next(e for e in logs if e["event"] == "3 warm-up rounds")["stage"] == "warmup"
    assert next(e for e in logs if e["event"] == "loaded in 1.2 s")["secs"] == 1.25


def test_packflow_logger_is_loguru_and_add_remove_level_catch_work() -> None:
    assert get_logger() is logger
    assert type(logger).__module__.startswith("loguru")
    sink = io.StringIO()
    handler_id = logger.add(sink, level="WARNING", format="{level}|{message}")
    try:
        assert isinstance(handler_id, int)
        logger.info("below the sink's level")
        logger.warning("scored {} records", 5)
        notice = logger.level("NOTICE", no=35)
        assert notice.no == 35
        logger.log("NOTICE", "custom level")
        with logger.catch(reraise=False):
            raise RuntimeError("swallowed and logged")
    finally:
        logger.remove(handler_id)
    lines = sink.getvalue().splitlines()
    assert lines[:2] == ["WARNING|scored 5 records", "NOTICE|custom level"]
    assert lines[2].startswith("ERROR|An error has been caught")
    logger.warning("after remove")  # the removed sink gets nothing more
    assert "after remove" not in sink.getvalue()


def test_disable_and_enable_silence_a_module() -> None:
    with capture_logs() as logs:
        logger.disable("packflow")
        try:
            Chatty()
        finally:
            logger.enable("packflow")
    assert [e["event"] for e in logs if e["event"] == "backend_initialized"] == []
    with capture_logs() as logs:
        Chatty()
    assert [e["event"] for e in logs if e["event"] == "backend_initialized"] == [
        "backend_initialized"
    ]


def test_configure_extra_reaches_every_line() -> None:
    logger.configure(extra={"service": "scoring"})
    try:
        with capture_logs() as logs:
            logger.info("with extra")
    finally:
        logger.configure(extra={})
    assert logs[0]["service"] == "scoring"
    with capture_logs() as logs:
        logger.info("without")
    assert "service" not in logs[0]


def test_exception_logs_the_handled_exception() -> None:
    with capture_logs() as logs:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed on {}", "record 3")
    assert logs[0]["event"] == "failed on record 3"
    assert logs[0]["log_level"] == "error"
    assert logs[0]["exc_info"] is True


SCRIPT = textwrap.dedent(
    """
    from packflow import InferenceBackend

    class Scorer(InferenceBackend):
        def initialize(self):
            self.logger.info("init line")
            self.logger.debug("debug line")
            self.logger.warning("warning line")

        def execute(self, inputs):
            return inputs

    backend = Scorer(verbose=True)
    backend({"a": 1})
    """
)


def run_script(level: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "", "PYTHONPATH": ":".join(sys.path)}
    if level is not None:
        env["PACKFLOW_LOG_LEVEL"] = level
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("level", "shown", "hidden"),
    [
        (
            None,
            ["init line", "warning line", "Initialized Scorer in"],
            ["debug line", "backend_call"],
        ),
        ("debug", ["debug line", "backend_call batch_size=1"], []),
        ("WARNING", ["warning line"], ["init line", "Initialized Scorer", "backend_call"]),
        ("ERROR", [], ["warning line", "init line", "Initialized"]),
    ],
)
def test_lines_go_to_stderr_filtered_by_packflow_log_level_and_stdout_stays_empty(
    level: str | None, shown: list[str], hidden: list[str]
) -> None:
    result = run_script(level)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    for fragment in shown:
        assert fragment in result.stderr
    for fragment in hidden:
        assert fragment not in result.stderr


def test_an_unknown_packflow_log_level_falls_back_to_info() -> None:
    result = run_script("LOUD")
    assert result.returncode == 0, result.stderr
    assert "init line" in result.stderr
    assert "debug line" not in result.stderr


def test_verbose_metrics_line_carries_the_metrics_as_fields() -> None:
    backend = Chatty(verbose=True)
    with capture_logs() as logs:
        backend([{"a": 1}])
    (call,) = [e for e in logs if e["event"] == "backend_call"]
    assert call["log_level"] == "debug"
    json.dumps(call)  # plain values only
    assert call["batch_size"] == 1
    assert call["message"].startswith("backend_call batch_size=1 ")

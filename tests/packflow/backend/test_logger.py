"""self.logger accepts the loguru-style calls of 0.4.x backends and structlog's fields."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from packflow import InferenceBackend
from packflow.backend._logger import BackendLogger


class Chatty(InferenceBackend):
    """Logs the way backends written for packflow 0.4.x (loguru) do."""

    def initialize(self) -> None:
        self.logger.info("loading {} from {}", "model.bin", "/models")
        self.logger.success("loaded in {secs:.1f} s", secs=1.25)
        self.logger.debug("not shown at the default level")
        self.logger.opt(lazy=True).warning("cache {0} is cold", "A")
        self.logger.bind(stage="warmup").log("INFO", "{} warm-up rounds", 3)

    def execute(self, inputs: Any) -> Any:
        return inputs


def events(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["log_level"], e["event"]) for e in logs if e["event"] != "backend_initialized"]


def test_loguru_style_messages_are_formatted_not_crashing_initialize(monkeypatch) -> None:
    monkeypatch.delenv("PACKFLOW_LOG_LEVEL", raising=False)
    with capture_logs() as logs:
        Chatty()
    assert events(logs) == [
        ("info", "loading model.bin from /models"),
        ("info", "loaded in 1.2 s"),
        ("warning", "cache A is cold"),
        ("info", "3 warm-up rounds"),
    ]
    assert next(e for e in logs if e["event"] == "3 warm-up rounds")["stage"] == "warmup"
    assert next(e for e in logs if e["event"] == "loaded in 1.2 s")["secs"] == 1.25


def test_packflow_log_level_filters_like_0_4(monkeypatch) -> None:
    monkeypatch.setenv("PACKFLOW_LOG_LEVEL", "debug")
    with capture_logs() as logs:
        Chatty()
    assert ("debug", "not shown at the default level") in events(logs)
    monkeypatch.setenv("PACKFLOW_LOG_LEVEL", "WARNING")
    with capture_logs() as logs:
        Chatty()
    assert events(logs) == [("warning", "cache A is cold")]


def test_structlog_style_fields_are_kept_and_braces_that_are_not_placeholders_stay() -> None:
    logger = BackendLogger(structlog.get_logger("t"), threshold=0)
    with capture_logs() as logs:
        logger.info("model_loaded", path="/m", rows=3)
        logger.info("json {not a placeholder}", "x")
        logger.log(25, "numeric level")
    assert logs[0] == {"event": "model_loaded", "path": "/m", "rows": 3, "log_level": "info"}
    assert logs[1]["event"] == "json {not a placeholder} ('x',)"
    assert logs[2] == {"event": "numeric level", "log_level": "info"}


def test_an_unknown_level_name_is_a_clear_error() -> None:
    logger = BackendLogger(structlog.get_logger("t"), threshold=0)
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        logger.log("LOUD", "x")


def test_exception_logs_the_handled_exception() -> None:
    logger = BackendLogger(structlog.get_logger("t"), threshold=0)
    with capture_logs() as logs:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("failed on {}", "record 3")
    assert logs[0]["event"] == "failed on record 3"
    assert logs[0]["log_level"] == "error"
    assert logs[0]["exc_info"] is True


def test_packflow_logger_module_serves_0_4_imports(monkeypatch) -> None:
    monkeypatch.delenv("PACKFLOW_LOG_LEVEL", raising=False)
    from packflow.logger import get_logger, logger

    assert isinstance(logger, BackendLogger)
    with capture_logs() as logs:
        get_logger().info("scored {} records", 5)
    assert logs == [{"event": "scored 5 records", "log_level": "info"}]

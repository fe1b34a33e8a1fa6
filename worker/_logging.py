"""structlog set-up for the worker process: one JSON object per line on stdout.

The SDK and backends log through loguru (packflow 0.4.x's logger, stderr by default); the
worker replaces loguru's handlers with one that hands each line to structlog, so those
lines join the same JSON stream (see ``_forward_loguru``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import loguru
import orjson
import structlog

from worker._log_limit import RateLimitFilter, install

__all__ = ["configure_logging"]


def _dumps(obj: object, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Render every structlog event as one JSON line on ``stream`` (stdout by default).

    Called once by the CLI; never at import. Events below ``level`` cost a no-op call.
    """
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=True,
    )
    # aiokafka logs through the standard library: its warnings become JSON lines too.
    root = logging.getLogger()
    handler = _StructlogHandler()
    limit = RateLimitFilter()
    handler.addFilter(limit)
    install(limit)
    root.handlers[:] = [handler]
    root.setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # The SDK's and the backend's loguru lines: into the JSON stream, not onto stderr.
    loguru.logger.remove()
    loguru.logger.add(_forward_loguru, level=level, format="{message}")


def _forward_loguru(message: loguru.Message) -> None:
    """Hand one loguru line to structlog: ``event`` (the SDK's field, else the message) and
    the line's fields (``record["extra"]``), at the nearest standard level."""
    record = message.record
    fields: dict[str, Any] = dict(record["extra"])
    text = record["message"]
    event = fields.pop("event", text)
    if event != text:
        fields.setdefault("message", text)
    fields.setdefault("logger", record["name"])
    if record["exception"] is not None:
        exc = record["exception"]
        fields["exc_info"] = (exc.type, exc.value, exc.traceback)
    # loguru's TRACE (5) and SUCCESS (25) have no structlog name: use the level below.
    level = min(logging.CRITICAL, max(logging.DEBUG, record["level"].no // 10 * 10))
    structlog.get_logger(record["name"]).log(level, str(event), **fields)


class _StructlogHandler(logging.Handler):
    """Forwards standard-library log records (aiokafka's) to structlog as ``library_log``.

    Rate-limited (:class:`~worker._log_limit.RateLimitFilter`): a line that follows dropped
    similar lines carries ``suppressed`` with their count.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            extra = {}
            suppressed = getattr(record, "suppressed", 0)
            if suppressed:
                extra["suppressed"] = suppressed
            structlog.get_logger(record.name).log(
                record.levelno,
                "library_log",
                logger=record.name,
                message=record.getMessage(),
                **extra,
            )
        except Exception:  # logging must never break the worker
            self.handleError(record)

"""``self.logger`` of a backend: structlog underneath, loguru's call style accepted on top.

Backends written for packflow 0.4.x log through loguru's API (``logger.info("loaded {} in
{:.1f} s", name, secs)``, ``logger.success(...)``, ``logger.bind(...)``); structlog would
%-format those arguments and fail. :class:`BackendLogger` formats them the loguru way and
hands one structlog event on, so both styles work::

    self.logger.info("loaded {} in {:.1f} s", name, secs)   # loguru style
    self.logger.info("model_loaded", path=path)               # structlog style: fields
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["LOG_LEVEL_ENV_VAR_NAME", "BackendLogger"]

LOG_LEVEL_ENV_VAR_NAME = "PACKFLOW_LOG_LEVEL"

_LEVELS = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "SUCCESS": 25,
    "WARNING": 30,
    "ERROR": 40,
    "CRITICAL": 50,
}
# structlog has no trace or success level: the nearest one below carries them.
_STRUCTLOG_METHOD = {
    "TRACE": "debug",
    "DEBUG": "debug",
    "INFO": "info",
    "SUCCESS": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "CRITICAL": "critical",
}


def threshold_from_env() -> int:
    """The lowest level logged: ``$PACKFLOW_LOG_LEVEL`` (as in 0.4.x), ``INFO`` by default."""
    name = os.environ.get(LOG_LEVEL_ENV_VAR_NAME, "INFO").strip().upper()
    return _LEVELS.get(name, _LEVELS["INFO"])


def _format(message: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    text = str(message)
    if args or (kwargs and "{" in text):
        try:
            return text.format(*args, **kwargs)
        except (IndexError, KeyError, ValueError):
            # A message whose braces are not placeholders is logged as written, arguments kept.
            return f"{text} {args!r}" if args else text
    return text


class BackendLogger:
    """The logger a backend gets as ``self.logger``.

    Every call becomes one structlog event (configure structlog to route and render them):
    positional arguments fill ``{}`` placeholders as loguru does, keyword arguments fill
    named placeholders and are kept as fields. Levels below ``$PACKFLOW_LOG_LEVEL`` (default
    ``INFO``) cost one comparison and log nothing. Any other attribute is structlog's.
    """

    __slots__ = ("_logger", "_threshold")

    def __init__(self, logger: Any, threshold: int | None = None) -> None:
        self._logger = logger
        self._threshold = threshold_from_env() if threshold is None else threshold

    def _emit(
        self, level: str, message: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if _LEVELS[level] < self._threshold:
            return
        method = getattr(self._logger, _STRUCTLOG_METHOD[level])
        method(_format(message, args, kwargs), **kwargs)

    def trace(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at loguru's TRACE level (structlog's debug)."""
        self._emit("TRACE", message, args, kwargs)

    def debug(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at DEBUG."""
        self._emit("DEBUG", message, args, kwargs)

    def info(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at INFO."""
        self._emit("INFO", message, args, kwargs)

    def success(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at loguru's SUCCESS level (structlog's info)."""
        self._emit("SUCCESS", message, args, kwargs)

    def warning(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at WARNING."""
        self._emit("WARNING", message, args, kwargs)

    def error(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR."""
        self._emit("ERROR", message, args, kwargs)

    def critical(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at CRITICAL."""
        self._emit("CRITICAL", message, args, kwargs)

    def exception(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR with the exception being handled."""
        kwargs.setdefault("exc_info", True)
        self._emit("ERROR", message, args, kwargs)

    def log(self, level: str | int, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at ``level``: a name (``"INFO"``, ``"SUCCESS"``...) or a number."""
        if isinstance(level, int):
            name = max(
                (n for n, v in _LEVELS.items() if v <= level),
                key=_LEVELS.__getitem__,
                default="TRACE",
            )
        else:
            name = level.upper()
            if name not in _LEVELS:
                raise ValueError(f"unknown log level {level!r}; expected one of {list(_LEVELS)}")
        self._emit(name, message, args, kwargs)

    def bind(self, **fields: Any) -> BackendLogger:
        """A logger whose events carry ``fields`` too."""
        return BackendLogger(self._logger.bind(**fields), self._threshold)

    def opt(self, *args: Any, **kwargs: Any) -> BackendLogger:
        """Accepted for loguru compatibility; its options have no structlog meaning."""
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # e.g. while unpickling, before the slots are set
            raise AttributeError(name)
        return getattr(self._logger, name)

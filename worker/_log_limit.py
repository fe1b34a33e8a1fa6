"""Rate limit for library log lines (aiokafka's): one line per source per window, counted.

During a broker outage aiokafka logs an error for every connection attempt, about a hundred
lines a second. :class:`RateLimitFilter` lets the first line of each kind through per
window (a kind: logger, level, message template and its first argument, which for aiokafka
names the node or connection) and counts the rest; the next line let through carries
``suppressed`` (how many similar lines were dropped before it), and :func:`take_suppressed`
reports the total dropped since it was last asked (``kafka_reachable`` carries it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_WINDOW_SECONDS", "RateLimitFilter", "take_suppressed"]

DEFAULT_WINDOW_SECONDS = 10.0
_MAX_KINDS = 1024

_Kind = tuple[str, int, str, str]


@dataclass(slots=True)
class _Window:
    started: float
    suppressed: int = 0


class RateLimitFilter(logging.Filter):
    """Passes one record of each kind per ``window_s`` seconds; sets ``record.suppressed``."""

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[_Kind, _Window] = {}
        self.unreported = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """True to emit ``record``; False when a record of its kind passed in this window."""
        kind = _kind_of(record)
        now = self._clock()
        window = self._windows.get(kind)
        if window is not None and now - window.started < self._window_s:
            window.suppressed += 1
            self.unreported += 1
            return False
        if window is not None and window.suppressed:
            record.suppressed = window.suppressed
        if window is None and len(self._windows) >= _MAX_KINDS:
            self._windows.pop(next(iter(self._windows)))
        self._windows[kind] = _Window(now)
        return True

    def take_unreported(self) -> int:
        """Records dropped since the last call."""
        count, self.unreported = self.unreported, 0
        return count


def _kind_of(record: logging.LogRecord) -> _Kind:
    args = record.args
    first = ""
    if isinstance(args, tuple) and args:
        first = str(args[0])
    return record.name, record.levelno, str(record.msg), first


_active: RateLimitFilter | None = None


def install(log_filter: RateLimitFilter) -> None:
    """Make ``log_filter`` the one :func:`take_suppressed` reports on."""
    global _active
    _active = log_filter


def take_suppressed() -> int:
    """Library log lines dropped since the last call (0 when no filter is installed)."""
    return 0 if _active is None else _active.take_unreported()

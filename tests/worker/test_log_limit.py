"""RateLimitFilter: one library line of a kind per window, the rest counted, nothing silent."""

from __future__ import annotations

import logging

from worker import _log_limit
from worker._log_limit import RateLimitFilter, take_suppressed


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.conn", level, __file__, 1, msg, args, None)


def test_one_line_per_connection_per_window_and_the_next_one_carries_the_count():
    clock = Clock()
    limit = RateLimitFilter(window_s=10.0, clock=clock)
    template = "Unable connect to %r: %s"
    passed = []
    for second in range(25):  # 95 lines a second from each of two connections, for 25 s
        clock.now = float(second)
        for _ in range(95):
            for node in ("node-1", "node-2"):
                record = _record(template, node, f"refused at {second}")
                if limit.filter(record):
                    passed.append((second, node, getattr(record, "suppressed", 0)))
    assert passed == [
        (0, "node-1", 0),
        (0, "node-2", 0),
        (10, "node-1", 949),
        (10, "node-2", 949),
        (20, "node-1", 949),
        (20, "node-2", 949),
    ]
    assert limit.take_unreported() == 2 * 25 * 95 - 6
    assert limit.take_unreported() == 0


def test_different_messages_and_levels_are_different_kinds():
    limit = RateLimitFilter(window_s=10.0, clock=Clock())
    assert limit.filter(_record("Unable to update metadata from %r", 1))
    assert limit.filter(_record("Unable connect to %r", 1))
    assert limit.filter(_record("Unable connect to %r", 1, level=logging.WARNING))
    assert not limit.filter(_record("Unable connect to %r", 1))


def test_take_suppressed_reports_the_installed_filter_once(monkeypatch):
    monkeypatch.setattr(_log_limit, "_active", None)
    assert take_suppressed() == 0
    limit = RateLimitFilter(window_s=10.0, clock=Clock())
    _log_limit.install(limit)
    for _ in range(4):
        limit.filter(_record("same %s", "x"))
    assert take_suppressed() == 3
    assert take_suppressed() == 0

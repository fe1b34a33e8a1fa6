"""The breaker: a batch the backend cannot process now is held, not dead-lettered.

When a batch keeps failing transiently after its retries, or most of its messages fail the same
way (:class:`~worker.retry.BackendUnavailable`), the worker opens the breaker: it pauses its
partitions, turns ``/readyz`` unready with the reason, keeps polling the consumer so the group
keeps its member (no rebalance), and runs the same batch again with capped backoff. The first
success closes it. Nothing past the held batch is published or committed meanwhile.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["Breaker"]


class Breaker:
    """Whether a batch is held, why, and for how long in all."""

    def __init__(self, logger: Any) -> None:
        self._log = logger
        self.reason: str | None = None
        self._opened_at: float | None = None
        self.trips = 0
        self.retries = 0
        self._closed_seconds = 0.0

    @property
    def is_open(self) -> bool:
        """True while a batch is held."""
        return self._opened_at is not None

    @property
    def open_seconds(self) -> float:
        """Seconds the breaker has been open in all (the current opening included)."""
        current = 0.0 if self._opened_at is None else time.monotonic() - self._opened_at
        return self._closed_seconds + current

    def open(self, reason: str, retry_in: float) -> None:
        """Hold the batch for ``reason``; the next attempt is in ``retry_in`` seconds."""
        if self._opened_at is None:
            self._opened_at = time.monotonic()
            self.trips += 1
            self._log.warning("breaker_opened", reason=reason, retry_in_s=round(retry_in, 3))
        else:
            self.retries += 1
            self._log.warning("breaker_retry_failed", reason=reason, retry_in_s=round(retry_in, 3))
        self.reason = reason

    def close(self) -> float:
        """The held batch went through (or was given up); returns how long it was held."""
        if self._opened_at is None:
            return 0.0
        held = time.monotonic() - self._opened_at
        self._closed_seconds += held
        self._opened_at = None
        self.reason = None
        self._log.info("breaker_closed", held_s=round(held, 3))
        return held

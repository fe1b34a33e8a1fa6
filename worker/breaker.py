"""The breaker: a batch the backend cannot process now is held, not dead-lettered.

When a batch keeps failing transiently after its retries, or most of its messages fail the same
way (:class:`~worker.retry.BackendUnavailable`), the worker opens the breaker: it pauses its
partitions, turns ``/readyz`` unready with the reason, keeps polling the consumer so the group
keeps its member (no rebalance), and runs the same batch again with capped backoff. The first
success closes it. Nothing past the held batch is published or committed meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from worker._backoff import Backoff
from worker.pipeline import Batch
from worker.retry import BackendUnavailable

__all__ = ["Breaker"]


class Breaker:
    """Holds a batch while the backend is unavailable; says why, and for how long in all.

    ``initial`` and ``maximum`` are the delays (seconds) between runs of a held batch.
    """

    def __init__(self, logger: Any, *, initial: float, maximum: float) -> None:
        self._log = logger
        self._initial = initial
        self._maximum = maximum
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

    async def run(
        self,
        batch: Batch,
        run: Callable[[Batch], Awaitable[None]],
        afresh: Callable[[], Batch],
        *,
        hold: Callable[[float], Awaitable[None]],
        given_up: Callable[[Batch], bool],
    ) -> Batch | None:
        """``run`` the batch; while it raises :class:`BackendUnavailable`, open, ``hold`` the
        partitions for the next delay and run a fresh copy (``afresh``) again.

        Returns the batch that ran, its ``breaker_*`` figures filled; None when ``given_up``
        after a hold (the batch is then never published: its partitions' owner runs it again
        from the committed offset).
        """
        backoff: Backoff | None = None
        while True:
            try:
                await run(batch)
            except BackendUnavailable as exc:
                if backoff is None:
                    backoff = Backoff(initial=self._initial, maximum=self._maximum, jitter=0.5)
                delay = backoff.next_delay()
                self.open(f"backend failing: {exc.reason}", delay)
                await hold(delay)
                if given_up(batch):
                    self.close()
                    return None
                batch = afresh()
                continue
            held = self.close() if self.is_open else 0.0
            batch.stats.breaker_held_ms = held * 1000.0
            batch.stats.breaker_retries = 0 if backoff is None else backoff.attempts
            return batch

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

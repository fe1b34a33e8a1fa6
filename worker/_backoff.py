"""Exponential backoff: the one pacing rule of every retry loop in the worker.

A small class rather than a retry library: each loop decides per failure whether to retry
(a refusal for good is not retried, a start-up deadline ends it, a fenced producer is fatal),
which these loops already express as plain control flow; what they shared, and wrote out four
times, is only the delay sequence.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays ``initial``, ``initial * factor``, ... capped at ``maximum`` seconds.

    With ``jitter`` (0 to 1) each delay is shortened by a random share of up to ``jitter``, so
    that many workers retrying one dependency do not retry in step.
    """

    def __init__(
        self, *, initial: float, maximum: float, factor: float = 2.0, jitter: float = 0.0
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError(
                f"backoff needs 0 < initial <= maximum and factor >= 1, got initial={initial}, "
                f"maximum={maximum}, factor={factor}"
            )
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"backoff jitter must be within 0 and 1, got {jitter}")
        self._next = initial
        self._maximum = maximum
        self._factor = factor
        self._jitter = jitter
        self.attempts = 0

    def peek(self) -> float:
        """The delay :meth:`next_delay` returns next, without advancing."""
        return self._next

    def next_delay(self) -> float:
        """The delay before the next attempt; each call advances the sequence."""
        delay = self._next
        self._next = min(self._next * self._factor, self._maximum)
        self.attempts += 1
        if self._jitter:
            delay *= 1.0 - self._jitter * random.random()
        return delay

"""A token bucket: at most ``rate`` actions per second on average, ``burst`` at once."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """Paces actions to ``rate`` per second; up to ``burst`` may go at once after a pause.

    :meth:`reserve` takes one token and returns how long to wait before acting on it, so a
    caller that sleeps that long before each action keeps the rate. ``clock`` is injectable
    for tests.
    """

    def __init__(
        self, rate: float, *, burst: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()

    def reserve(self) -> float:
        """Take a token; the seconds to wait before it is due (0.0 when one was available)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

"""Bounded in-flight work: Kafka records (messages) and bytes taken but not yet committed.

The fetch loop asks :meth:`InFlightBudget.room` before each ``getmany`` and never takes more
records than it allows; bytes are checked before fetching, so they can exceed the bound by at
most one batch. Records and bytes are released when a batch's outputs are acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["InFlightBudget"]


class InFlightBudget:
    """Counts records and bytes in flight against their bounds."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        if max_records < 1 or max_bytes < 1:
            raise ValueError("in-flight bounds must be positive")
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.records = 0
        self.bytes = 0
        self.peak_records = 0
        self.peak_bytes = 0
        self._changed = asyncio.Event()

    def room(self) -> int:
        """How many more records may be fetched now (0 when either bound is reached)."""
        if self.bytes >= self.max_bytes:
            return 0
        return max(0, self.max_records - self.records)

    @property
    def empty(self) -> bool:
        """True when nothing is in flight."""
        return self.records == 0 and self.bytes == 0

    def take(self, records: int, nbytes: int) -> None:
        """Account for a fetched batch."""
        self.records += records
        self.bytes += nbytes
        self.peak_records = max(self.peak_records, self.records)
        self.peak_bytes = max(self.peak_bytes, self.bytes)

    def release(self, records: int, nbytes: int) -> None:
        """Account for a batch whose outputs are acknowledged (or that was dropped)."""
        self.records -= records
        self.bytes -= nbytes
        if self.records < 0 or self.bytes < 0:
            raise RuntimeError("in-flight budget released more than it took")
        self._changed.set()

    async def wait_changed(self, seconds: float) -> None:
        """Wait until something is released, or ``seconds`` pass."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    async def wait_empty(self, seconds: float) -> bool:
        """Wait until nothing is in flight; returns False if ``seconds`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.empty:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self.wait_changed(remaining)
        return True

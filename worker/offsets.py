"""Per-partition offset tracking: commit only the contiguous acknowledged prefix.

Offsets are registered in fetch order when a batch is taken, and acknowledged when every
output and dead letter for that message is confirmed by the broker. The committable position
of a partition is one past the highest offset such that it and every earlier registered offset
are acknowledged, so a commit never skips a message whose outputs are not yet published.

Revoking a partition bumps its epoch: acknowledgements from work fetched under an earlier
assignment are ignored, so they cannot move the position of a later assignment.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

from aiokafka import TopicPartition

__all__ = ["OffsetTracker"]


def _is_head_of(offsets: list[int], pending: deque[int]) -> bool:
    """True when ``offsets`` are exactly the first ``len(offsets)`` pending offsets."""
    count = len(offsets)
    return 0 < count <= len(pending) and list(islice(pending, count)) == offsets


@dataclass(slots=True)
class _PartitionState:
    pending: deque[int] = field(default_factory=deque)
    acked: set[int] = field(default_factory=set)
    committable: int | None = None
    committed: int | None = None


class OffsetTracker:
    """Tracks registered and acknowledged offsets for each partition."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _PartitionState] = {}
        self._epochs: dict[TopicPartition, int] = {}

    def epoch(self, tp: TopicPartition) -> int:
        """The current assignment epoch of ``tp`` (changes each time it is forgotten)."""
        return self._epochs.get(tp, 0)

    def register(self, tp: TopicPartition, offsets: list[int]) -> int:
        """Record offsets taken for processing, in fetch order; returns the epoch to ack with."""
        state = self._parts.get(tp)
        if state is None:
            state = self._parts[tp] = _PartitionState()
        if state.pending and offsets and offsets[0] <= state.pending[-1]:
            raise ValueError(
                f"{tp.topic}/{tp.partition}: offset {offsets[0]} registered after "
                f"{state.pending[-1]}; offsets must increase"
            )
        state.pending.extend(offsets)
        return self.epoch(tp)

    def ack(self, tp: TopicPartition, offset: int, epoch: int) -> None:
        """Mark ``offset`` published; stale epochs and unknown partitions are ignored."""
        self.ack_many(tp, (offset,), epoch)

    def ack_many(self, tp: TopicPartition, offsets: Iterable[int], epoch: int) -> None:
        """Mark ``offsets`` of ``tp`` published (as :meth:`ack` does each, in one step)."""
        state = self._parts.get(tp)
        if state is None or self.epoch(tp) != epoch:
            return
        pending, acked = state.pending, state.acked
        if not acked and type(offsets) is list and _is_head_of(offsets, pending):
            # The common case, a batch acknowledged in order: the same outcome as below.
            for _ in range(len(offsets)):
                pending.popleft()
            state.committable = offsets[-1] + 1
            return
        acked.update(offsets)
        while pending and pending[0] in acked:
            done = pending.popleft()
            acked.discard(done)
            state.committable = done + 1

    def to_commit(self) -> dict[TopicPartition, int]:
        """Positions that advanced since the last :meth:`mark_committed`."""
        return {
            tp: s.committable
            for tp, s in self._parts.items()
            if s.committable is not None and s.committable != s.committed
        }

    def mark_committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Remember that ``offsets`` were committed."""
        for tp, offset in offsets.items():
            state = self._parts.get(tp)
            if state is not None:
                state.committed = offset

    def forget(self, partitions: set[TopicPartition] | list[TopicPartition]) -> None:
        """Drop the state of revoked partitions and start a new epoch for each."""
        for tp in partitions:
            self._parts.pop(tp, None)
            self._epochs[tp] = self.epoch(tp) + 1

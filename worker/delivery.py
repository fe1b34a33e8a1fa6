"""The interface of a delivery guarantee, and what a delivered batch reports back.

:class:`~worker.at_least_once.AtLeastOnce` and :class:`~worker.exactly_once.ExactlyOnce`
implement :class:`DeliveryStrategy`; the worker calls it and never asks which one it has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from worker.lifecycle import Deadline
from worker.pipeline import Batch, Message

__all__ = ["DeliveryStrategy", "OnSettled", "Settled", "settled"]


@dataclass(frozen=True, slots=True)
class Settled:
    """What the broker acknowledged of one batch."""

    outputs: int
    dead_letters: int
    records_out: int
    inputs: list[ConsumerRecord[bytes, bytes]]
    letter_kinds: list[tuple[str, str]] = field(default_factory=list)  # (step, error type)


def settled(messages: list[Message]) -> Settled:
    """The :class:`Settled` report of ``messages`` as they were finally published."""
    rows = 0
    kinds: list[tuple[str, str]] = []
    for message in messages:
        letter = message.letter
        if letter is None:
            rows += message.rows
        else:
            kinds.append((letter.step, letter.error_type))
    return Settled(
        outputs=len(messages) - len(kinds),
        dead_letters=len(kinds),
        records_out=rows,
        inputs=[m.record for m in messages],
        letter_kinds=kinds,
    )


OnSettled = Callable[[Batch, Settled], Awaitable[None]]
"""Called once per batch when the broker has acknowledged everything it covers."""


class DeliveryStrategy(Protocol):
    """Publishes batches and commits their offsets under one guarantee."""

    @property
    def commits(self) -> int:
        """Offset commits so far (exactly-once: committed transactions)."""

    async def start(self) -> None:
        """Start background work (acknowledgement and commit tasks)."""

    async def publish(self, batch: Batch, owned: Callable[[], bool]) -> None:
        """Publish ``batch``; ``owned()`` says whether its assignment is still current.

        Returns once the batch is handed over (it may settle later); every batch is reported
        to :data:`OnSettled` once, unless its partitions were revoked meanwhile.
        """

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """The work in flight has drained (or timed out): give ``partitions`` up."""

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """``partitions`` are the new assignment: prepare them before any record is processed."""

    async def drain(self, deadline: Deadline) -> bool:
        """Before the consumer stops: settle what is in flight and commit. False if late."""

    async def close(self, deadline: Deadline) -> bool:
        """After the consumer stopped: release producers. False if late."""

    def dead_tasks(self) -> list[str]:
        """Names of background tasks that ended (health)."""

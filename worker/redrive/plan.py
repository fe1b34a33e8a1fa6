"""What goes back, and as what: one decision per dead-letter message, without Kafka.

:func:`plan` reads the message (:func:`~worker.redrive.letters.read_dead_letter`), applies the
:class:`~worker.redrive.selection.Selection` and loop protection, and returns :class:`Resend`
(the original value, key and headers, ``packflow-redrive-count`` one higher), :class:`Skip`
(it cannot or must not go back, and why) or :class:`NotSelected`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

from worker.pipeline import SOURCE_HEADER
from worker.redrive.letters import (
    INVALID_ROW,
    NotADeadLetterError,
    StoredDeadLetter,
    read_dead_letter,
)
from worker.redrive.selection import Selection

__all__ = [
    "REDRIVE_COUNT_HEADER",
    "Decision",
    "NotSelected",
    "Resend",
    "Skip",
    "plan",
    "redrive_count",
    "redrive_headers",
]

REDRIVE_COUNT_HEADER = "packflow-redrive-count"
"""How many times a message was redriven (ASCII integer); the worker copies it into its dead
letters with the input's other headers, so it survives a round trip."""


def redrive_count(headers: Iterable[tuple[str, bytes]] | None) -> int:
    """The ``packflow-redrive-count`` of ``headers`` (0 without one; the largest of several).

    Raises ``ValueError`` when a value is not an ASCII integer.
    """
    counts = [
        int(value.decode("ascii")) for name, value in headers or () if name == REDRIVE_COUNT_HEADER
    ]
    if any(count < 0 for count in counts):
        raise ValueError("negative count")
    return max(counts, default=0)


def redrive_headers(
    headers: Iterable[tuple[str, bytes]] | None, count: int
) -> list[tuple[str, bytes]]:
    """A dead letter's headers as its redriven message carries them: its ``packflow-source``
    and any ``packflow-redrive-count`` dropped, ``packflow-redrive-count: <count>`` added."""
    kept = [(k, v) for k, v in headers or () if k not in {SOURCE_HEADER, REDRIVE_COUNT_HEADER}]
    kept.append((REDRIVE_COUNT_HEADER, str(count).encode("ascii")))
    return kept


@dataclass(frozen=True, slots=True)
class Resend:
    """Send ``value`` with ``key`` and ``headers`` to ``topic`` (partition: see the runner)."""

    stored: StoredDeadLetter
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def row(self) -> tuple[str, str]:
        """The report row: ``(error type, step)``."""
        return self.stored.row


@dataclass(frozen=True, slots=True)
class Skip:
    """Not sent, and never will be by this run's rules: ``reason`` says why."""

    row: tuple[str, str]
    reason: str


@dataclass(frozen=True, slots=True)
class NotSelected:
    """Left out by the selection (``--where``, ``--since``, ``--until``)."""

    row: tuple[str, str]


Decision = Resend | Skip | NotSelected


def plan(
    record: ConsumerRecord[bytes, bytes],
    selection: Selection,
    *,
    max_redrives: int,
    target_topic: str | None = None,
) -> Decision:
    """What to do with the dead-letter message ``record``.

    ``target_topic`` None sends each dead letter back to its ``source.topic``. A dead letter
    already redriven ``max_redrives`` times is skipped (loop protection), and so is one
    without its value: it is never sent empty.
    """
    try:
        stored = read_dead_letter(record.value)
    except NotADeadLetterError as exc:
        return Skip(INVALID_ROW, str(exc))
    if not selection.selects(stored, record.timestamp):
        return NotSelected(stored.row)
    letter = stored.letter
    if letter.value is None:
        reason = "value omitted" if letter.value_omitted else "original had no value (tombstone)"
        return Skip(stored.row, reason)
    try:
        count = redrive_count(record.headers)
    except ValueError:
        return Skip(stored.row, f"bad {REDRIVE_COUNT_HEADER} header")
    if count >= max_redrives:
        return Skip(stored.row, f"redriven {max_redrives}+ times already (--max-redrives)")
    return Resend(
        stored,
        topic=target_topic or letter.topic,
        key=record.key,
        value=letter.value,
        headers=redrive_headers(record.headers, count + 1),
    )

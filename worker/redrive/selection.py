"""``--where``, ``--since``, ``--until``: which dead letters a redrive run selects.

A :class:`Selection` holds :class:`Condition` s (``FIELD=VALUE``, all must hold) and a time
window on the dead-letter message's Kafka timestamp. Bad flags raise
:class:`~worker.errors.SettingsError` with one line naming the flag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from worker.errors import SettingsError
from worker.redrive.letters import StoredDeadLetter

__all__ = ["WHERE_FIELDS", "Condition", "Selection", "parse_time"]

#: ``--where`` fields and how each reads a dead letter.
_FIELDS: dict[str, Callable[[StoredDeadLetter], str | int | None]] = {
    "error.type": lambda s: s.letter.error_type,
    "error.step": lambda s: s.letter.step,
    "source.topic": lambda s: s.letter.topic,
    "source.partition": lambda s: s.letter.partition,
    "worker": lambda s: s.worker,
    "backend": lambda s: s.backend,
}
WHERE_FIELDS = tuple(_FIELDS)
"""The fields ``--where FIELD=VALUE`` can test."""


@dataclass(frozen=True, slots=True)
class Condition:
    """``--where FIELD=VALUE``: the dead letter's ``field`` equals ``value`` (case-sensitive)."""

    field: str
    value: str | int

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Parse ``FIELD=VALUE``; a malformed one or an unknown field is a SettingsError."""
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SettingsError(f"--where {text!r} is not FIELD=VALUE")
        if name not in _FIELDS:
            raise SettingsError(
                f"--where {text!r}: unknown field {name!r} (known: {', '.join(WHERE_FIELDS)})"
            )
        if name == "source.partition":
            try:
                return cls(name, int(value))
            except ValueError:
                raise SettingsError(f"--where {text!r}: a partition is an integer") from None
        return cls(name, value)

    def matches(self, stored: StoredDeadLetter) -> bool:
        """Whether ``stored`` satisfies this condition."""
        return _FIELDS[self.field](stored) == self.value

    def __str__(self) -> str:
        return f"{self.field}={self.value}"


@dataclass(frozen=True, slots=True)
class Selection:
    """The dead letters a run redrives: every ``where`` condition holds (AND), and the
    dead-letter message's Kafka timestamp (ms) is at or after ``since_ms`` and before
    ``until_ms``. The empty selection takes every dead letter."""

    where: tuple[Condition, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None

    def __post_init__(self) -> None:
        since, until = self.since_ms, self.until_ms
        if since is not None and until is not None and since >= until:
            raise SettingsError("--since must be before --until")
        seen: dict[str, str | int] = {}
        for condition in self.where:
            other = seen.setdefault(condition.field, condition.value)
            if other != condition.value:
                raise SettingsError(
                    f"--where {condition.field}={other} and {condition} together select nothing"
                    " (conditions AND)"
                )

    @classmethod
    def parse(
        cls,
        where: Iterable[str] = (),
        *,
        since: str | None = None,
        until: str | None = None,
        source_partition: int | None = None,
    ) -> Selection:
        """The selection of the command-line flags; a bad one is a SettingsError."""
        conditions = [Condition.parse(text) for text in where]
        if source_partition is not None:
            conditions.append(Condition("source.partition", source_partition))
        return cls(
            where=tuple(conditions),
            since_ms=None if since is None else parse_time(since, "--since"),
            until_ms=None if until is None else parse_time(until, "--until"),
        )

    def selects(self, stored: StoredDeadLetter, timestamp_ms: int) -> bool:
        """Whether the dead letter ``stored``, written at ``timestamp_ms``, is selected."""
        if self.since_ms is not None and timestamp_ms < self.since_ms:
            return False
        if self.until_ms is not None and timestamp_ms >= self.until_ms:
            return False
        return all(condition.matches(stored) for condition in self.where)

    def __str__(self) -> str:
        parts = [str(condition) for condition in self.where]
        if self.since_ms is not None:
            parts.append(f"since {_iso(self.since_ms)}")
        if self.until_ms is not None:
            parts.append(f"until {_iso(self.until_ms)}")
        return ", ".join(parts) or "every dead letter"


def parse_time(text: str, flag: str) -> int:
    """Epoch milliseconds of ``text``: an ISO-8601 time (UTC unless it says otherwise) or
    epoch milliseconds. Raises a SettingsError naming ``flag``."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(
            f"{flag} {text!r} is neither an ISO-8601 time (2025-11-25T14:00:00Z) "
            "nor epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")

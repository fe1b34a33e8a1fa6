"""Dead letters read back from their topic: the format :func:`~worker.codec.encode_dead_letter`
writes (README "Dead letters"), checked field by field.

:func:`read_dead_letter` returns a :class:`StoredDeadLetter` (a :class:`~worker.codec.DeadLetter`
and who wrote it) or raises :class:`NotADeadLetterError` naming the first field that is wrong,
so a foreign message on a dead-letter topic is reported, not a crash.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from worker.codec import DeadLetter
from worker.errors import WorkerError

__all__ = ["INVALID_ROW", "NotADeadLetterError", "StoredDeadLetter", "read_dead_letter"]

#: The table row of a message that is not a packflow dead letter: (error type, step).
INVALID_ROW = ("(not a dead letter)", "-")


class NotADeadLetterError(WorkerError):
    """A dead-letter topic message is not a packflow dead letter; the message says why."""


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A dead letter as read back from its topic: the envelope, and who wrote it."""

    letter: DeadLetter
    worker: str | None = None
    backend: str | None = None

    @property
    def row(self) -> tuple[str, str]:
        """``(error type, step)``: the report row it counts in."""
        return self.letter.error_type, self.letter.step


def read_dead_letter(value: bytes | None) -> StoredDeadLetter:
    """Read a dead-letter message value; raises :class:`NotADeadLetterError` naming the fault."""
    if value is None:
        raise NotADeadLetterError("no value")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise NotADeadLetterError("not JSON") from None
    if not isinstance(body, dict):
        raise NotADeadLetterError("not a JSON object")
    error, source = _object(body, "error"), _object(body, "source")
    if "value" not in body:
        raise NotADeadLetterError("value missing")
    encoded = _field(body, "value", str, optional=True)  # "" is an empty original value
    try:
        original = None if encoded is None else base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise NotADeadLetterError("value is not base64") from None
    letter = DeadLetter(
        error_type=_field(error, "type", str, where="error"),
        message=_field(error, "message", str, where="error", optional=True) or "",
        step=_field(error, "step", str, where="error"),
        topic=_field(source, "topic", str, where="source"),
        partition=_field(source, "partition", int, where="source"),
        offset=_field(source, "offset", int, where="source"),
        timestamp=_field(source, "timestamp", int, where="source", optional=True),
        value=original,
        record_index=_field(error, "record_index", int, where="error", optional=True),
        value_omitted=_field(body, "value_omitted", str, optional=True),
    )
    return StoredDeadLetter(
        letter,
        worker=_field(body, "worker", str, optional=True),
        backend=_field(body, "backend", str, optional=True),
    )


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise NotADeadLetterError(f"{name} missing or not an object")
    return value


def _field(
    body: dict[str, Any], name: str, kind: type, *, where: str = "", optional: bool = False
) -> Any:
    """``body[name]`` if it is a ``kind`` (a required string must not be empty)."""
    value = body.get(name)
    if value is None and optional:
        return None
    # bool is an int to Python, not to JSON readers
    if not isinstance(value, kind) or isinstance(value, bool) or (value == "" and not optional):
        shown = f"{where}.{name}" if where else name
        wanted = {str: "a string", int: "an integer"}[kind]
        raise NotADeadLetterError(f"{shown} missing or not {wanted}")
    return value

"""Message values in and out: JSON decoding of inputs, encoding of outputs and dead letters.

Input values are UTF-8 JSON: an object (one record) or an array of objects (records sent
together). :func:`decode` returns the records and whether the input was an array, or raises a
:class:`~worker.errors.DecodeError` subclass naming what is wrong. :func:`encode_output` mirrors
the input shape; a value that cannot be serialized raises
:class:`~worker.errors.OutputEncodeError` naming the row index and key.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from packflow.utils._json import dumps_json
from worker.errors import (
    InvalidJsonError,
    NotARecordError,
    NotUtf8Error,
    OutputEncodeError,
)

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

__all__ = [
    "DeadLetter",
    "Decoded",
    "as_records",
    "decode",
    "encode_dead_letter",
    "encode_event",
    "encode_output",
    "locate",
]


@dataclass(frozen=True, slots=True)
class Decoded:
    """The records of one message, and whether they came as a JSON array."""

    records: list[dict[str, Any]]
    is_array: bool


def decode(value: bytes | None) -> Decoded:
    """Decode one message value into records.

    Raises :class:`NotUtf8Error`, :class:`InvalidJsonError` or :class:`NotARecordError`.
    """
    if value is None:
        raise NotARecordError("message has no value (a tombstone); expected a JSON object or array")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as utf_exc:
            raise NotUtf8Error(
                f"value is not valid UTF-8: {utf_exc.reason} at byte {utf_exc.start}"
            ) from None
        raise InvalidJsonError(f"value is not valid JSON: {exc}") from None
    return as_records(data)


def as_records(data: Any) -> Decoded:
    """The records of a decoded JSON value; raises :class:`NotARecordError` unless it is an
    object or an array of objects."""
    if isinstance(data, dict):
        return Decoded([data], False)
    if isinstance(data, list):
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise NotARecordError(
                    f"array item {index} is a JSON {_json_type(item)}, expected an object"
                )
        return Decoded(data, True)
    raise NotARecordError(f"value is a JSON {_json_type(data)}, expected an object or an array")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _dumps(value: Any) -> bytes:
    # The SDK's encoder: InferenceBackend.validate() accepts exactly what this publishes.
    return dumps_json(value)


def encode_output(outputs: list[Any], is_array: bool) -> bytes:
    """Encode a message's outputs: a JSON array for array input, else the single object."""
    try:
        return _dumps(outputs if is_array else outputs[0])
    except (orjson.JSONEncodeError, TypeError, ValueError) as exc:
        raise _locate_encode_error(outputs, exc) from exc


def _locate_encode_error(outputs: list[Any], exc: Exception) -> OutputEncodeError:
    for index, row in enumerate(outputs):
        try:
            _dumps(row)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            if isinstance(row, Mapping):
                for key, field in row.items():
                    try:
                        _dumps(field)
                    except (orjson.JSONEncodeError, TypeError, ValueError) as field_exc:
                        return OutputEncodeError(
                            f"output row {index} key {key!r}: value of type "
                            f"{type(field).__name__} is not JSON serializable ({field_exc})"
                        )
            return OutputEncodeError(
                f"output row {index}: value of type {type(row).__name__} "
                f"is not JSON serializable ({exc})"
            )
    return OutputEncodeError(f"outputs are not JSON serializable ({exc})")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a message went to the dead-letter topic, and where it came from."""

    error_type: str
    message: str
    step: str
    topic: str
    partition: int
    offset: int
    timestamp: int | None
    value: bytes | None
    record_index: int | None = None
    value_omitted: str | None = None
    attempts: int | None = None  # backend calls made for it (backend steps only)

    def without_value(self) -> DeadLetter:
        """This dead letter without the original value (for one too large for its topic).

        ``source`` still locates the original message; ``value_omitted`` says why it is gone.
        """
        if self.value is None:
            return self
        return dataclasses.replace(
            self,
            value=None,
            value_omitted=f"original value of {len(self.value)} bytes too large to republish",
        )

    @classmethod
    def of(
        cls,
        record: ConsumerRecord[bytes, bytes],
        error_type: str,
        message: str,
        step: str,
        record_index: int | None = None,
    ) -> DeadLetter:
        """The dead letter of input message ``record``: its source position and value."""
        return cls(
            error_type=error_type,
            message=message,
            step=step,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=record.timestamp,
            value=record.value,
            record_index=record_index,
        )


def locate(record: ConsumerRecord[bytes, bytes]) -> str:
    """``topic/partition@offset`` of ``record``, as error messages name it."""
    return f"{record.topic}/{record.partition}@{record.offset}"


def encode_dead_letter(letter: DeadLetter, *, worker_id: str, backend: str) -> bytes:
    """Encode the fixed dead-letter JSON object (see README "Dead letters")."""
    error: dict[str, Any] = {
        "type": letter.error_type,
        "message": letter.message,
        "step": letter.step,
    }
    if letter.record_index is not None:
        error["record_index"] = letter.record_index
    if letter.attempts is not None:
        error["attempts"] = letter.attempts
    body = {
        "error": error,
        "source": {
            "topic": letter.topic,
            "partition": letter.partition,
            "offset": letter.offset,
            "timestamp": letter.timestamp,
        },
        "value": None if letter.value is None else base64.b64encode(letter.value).decode("ascii"),
        "worker": worker_id,
        "backend": backend,
    }
    if letter.value_omitted is not None:
        body["value_omitted"] = letter.value_omitted
    return orjson.dumps(body)


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Encode a metric or lifecycle event for the metrics topic."""
    return _dumps(dict(event))

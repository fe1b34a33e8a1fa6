"""Exceptions raised by the packflow worker.

Every exception derives from :class:`WorkerError`, itself a
:class:`packflow.exceptions.PackflowError`::

    WorkerError
    ├── SettingsError     a setting is missing or invalid (start-up, exit code 2)
    ├── StartupError      the backend or Kafka could not be brought up (start-up, exit code 2)
    ├── DecodeError       a message value is not UTF-8 JSON holding an object or array of objects
    │   ├── NotUtf8Error
    │   ├── InvalidJsonError
    │   └── NotARecordError
    ├── OutputEncodeError an output value cannot be serialized to JSON
    ├── PublishError      the broker refused or failed a message (``retriable`` flag)
    └── KafkaFatalError   the Kafka client hit an error the worker cannot recover from
        └── AuthorizationError  an ACL is missing: names the operation and the resource
"""

from __future__ import annotations

from packflow.exceptions import PackflowError

__all__ = [
    "AuthorizationError",
    "DecodeError",
    "InvalidJsonError",
    "KafkaFatalError",
    "NotARecordError",
    "NotUtf8Error",
    "OutputEncodeError",
    "ProducerFencedError",
    "PublishError",
    "SettingsError",
    "StartupError",
    "WorkerError",
]


class WorkerError(PackflowError):
    """Root of every exception the worker raises."""


class SettingsError(WorkerError):
    """A setting is missing or invalid; the message names the flag and the variable."""


class StartupError(WorkerError):
    """The worker could not start (backend load, Kafka unreachable, missing topic...)."""


class DecodeError(WorkerError):
    """A message value is not a UTF-8 JSON object or array of objects."""


class NotUtf8Error(DecodeError):
    """The message value is not valid UTF-8."""


class InvalidJsonError(DecodeError):
    """The message value is UTF-8 but not valid JSON."""


class NotARecordError(DecodeError):
    """The JSON value is neither an object nor an array of objects."""


class OutputEncodeError(WorkerError):
    """A backend output cannot be serialized to JSON; names the row index and key."""


class PublishError(WorkerError):
    """Publishing a message failed. ``retriable`` tells whether trying again may succeed."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class KafkaFatalError(WorkerError):
    """The Kafka client failed in a way the worker cannot recover from."""


class AuthorizationError(KafkaFatalError):
    """The broker refused an operation for lack of an ACL.

    The message names the operation and the resource (``Write on topic 'out'``). Before the
    worker has settled a batch this is a start-up failure (exit code 2); later it stops the
    worker after committing what was published (exit code 1).
    """


class ProducerFencedError(KafkaFatalError):
    """A newer producer with the same transactional id fenced this one: another worker owns
    its partition."""


class KafkaUnanswered(WorkerError):
    """A request to Kafka failed or timed out: the broker may be unreachable.

    The message names the request and aiokafka's error, which is chained.
    """

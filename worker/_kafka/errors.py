"""aiokafka's errors as the worker's: a missing ACL, a refused message, a description."""

from __future__ import annotations

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from worker.errors import AuthorizationError, PublishError

# A message-level refusal: sending the same message again cannot succeed.
_MESSAGE_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


AUTHORIZATION_ERRORS = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
"""aiokafka's errors for a missing ACL."""


def not_authorized(exc: BaseException, operation: str, resource: str) -> AuthorizationError:
    """The :class:`AuthorizationError` for ``exc``: ``operation`` (an ACL operation such as
    ``Write``) refused on ``resource`` (``topic 'out'``)."""
    return AuthorizationError(
        f"not authorized: {operation} on {resource} was refused by the broker "
        f"({type(exc).__name__}); grant the worker's principal {operation} on it"
    )


def refusal(
    exc: BaseException,
    *,
    topic: str | tuple[str, ...],
    operation: str,
    group: str | None = None,
    transactional_id: str | None = None,
) -> AuthorizationError:
    """The :class:`AuthorizationError` for ``exc``, one of :data:`AUTHORIZATION_ERRORS`.

    A topic refusal names ``operation`` (``Read`` or ``Write``) on ``topic`` (or on one of
    several); a group, transactional-id or cluster refusal names what that resource needs.
    """
    if isinstance(exc, TransactionalIdAuthorizationFailed) and transactional_id is not None:
        return not_authorized(exc, "Write", f"transactional id {transactional_id!r}")
    if isinstance(exc, GroupAuthorizationFailedError) and group is not None:
        return not_authorized(exc, "Read", f"consumer group {group!r}")
    if isinstance(exc, ClusterAuthorizationFailedError):
        return not_authorized(exc, "IdempotentWrite", "the cluster")
    topics = (topic,) if isinstance(topic, str) else topic
    return not_authorized(exc, operation, "topic " + " or ".join(map(repr, topics)))


def describe(exc: BaseException) -> str:
    """``Type: message``, without repeating the type when aiokafka's message already has it;
    ``Type`` alone when there is no message (a bare ``TimeoutError``)."""
    text = str(exc)
    name = type(exc).__name__
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


def to_publish_error(exc: BaseException, topic: str) -> PublishError:
    """Translate a send failure; ``retriable`` is False when this message can never be sent."""
    if isinstance(exc, _MESSAGE_ERRORS):
        return PublishError(
            f"broker refused the message for {topic!r}: {type(exc).__name__}: {exc}",
            retriable=False,
        )
    if isinstance(exc, InvalidTopicError):
        return PublishError(
            f"cannot publish to {topic!r}: {type(exc).__name__}: {exc}", retriable=True
        )
    return PublishError(
        f"publishing to {topic!r} failed: {type(exc).__name__}: {exc}", retriable=True
    )


def send_error(exc: BaseException, topic: str) -> AuthorizationError | PublishError:
    """A failed send to ``topic``: an :class:`AuthorizationError` for a missing ACL (Write on
    ``topic``), else its :class:`PublishError` (:func:`to_publish_error`)."""
    if isinstance(exc, AUTHORIZATION_ERRORS):
        return refusal(exc, topic=topic, operation="Write")
    return to_publish_error(exc, topic)


def is_fenced(exc: BaseException) -> bool:
    """True when ``exc`` says a newer producer of the same transactional id fenced this one."""
    return isinstance(exc, ProducerFenced)

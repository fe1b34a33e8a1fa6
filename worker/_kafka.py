"""aiokafka construction, start-up retry, topic limits, bounded stop and error translation.

aiokafka's exceptions are translated here, once, into the worker's own
(:class:`~worker.errors.PublishError`, :class:`~worker.errors.StartupError`,
:class:`~worker.errors.KafkaUnanswered`), chained with ``from``, or into outcomes
(:func:`commit_offsets`, :func:`highwater`). The transactional producer's errors drive its
retry decisions and stay in :mod:`worker.transactions`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    CommitFailedError,
    GroupAuthorizationFailedError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    for_code,
)
from aiokafka.structs import ConsumerRecord

from worker._backoff import Backoff
from worker.clients import MAX_BATCH_BYTES, KafkaClients
from worker.errors import AuthorizationError, KafkaUnanswered, PublishError, StartupError
from worker.settings import WorkerSettings

__all__ = [
    "AUTHORIZATION_ERRORS",
    "MAX_BATCH_BYTES",
    "UNLIMITED",
    "TopicLimits",
    "ask",
    "check_topics",
    "commit_offsets",
    "describe",
    "getmany",
    "highwater",
    "not_authorized",
    "output_partition_count",
    "refusal",
    "start_with_retry",
    "stop_bounded",
    "to_publish_error",
    "topic_limits",
]

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


@dataclass(frozen=True, slots=True)
class TopicLimits:
    """What the broker accepts on the output and dead-letter topics, read at start-up.

    ``*_max_message_bytes`` is the topic's effective ``max.message.bytes``: the most bytes of
    one record batch as the broker measures it (aiokafka's ``BatchBuilder.size()``).
    ``output_compacted`` is True when the output topic's ``cleanup.policy`` has ``compact``
    (the broker then refuses records without a key). ``max_request_size`` is the producer's
    own cap on one request (``--max-request-size``), so on one message too.
    """

    output_max_message_bytes: int
    dlq_max_message_bytes: int
    output_compacted: bool = False
    max_request_size: int = 2**31 - 1

    @property
    def dead_letter_bytes(self) -> int:
        """The most bytes of one dead letter as a record batch: under the topic's limit and,
        with room for aiokafka's estimate (a few bytes over the exact size), the request's."""
        return min(self.dlq_max_message_bytes, self.max_request_size - _REQUEST_ESTIMATE_MARGIN)

    @property
    def batch_bytes(self) -> int:
        """The producer's ``max_batch_size``: no batch of several messages is over a limit.

        One producer sends outputs and dead letters (aiokafka groups ``send()`` calls into
        batches of up to this size), so it is under both topics' limits.
        """
        return min(
            MAX_BATCH_BYTES,
            self.output_max_message_bytes,
            self.dlq_max_message_bytes,
            self.max_request_size,
        )


_REQUEST_ESTIMATE_MARGIN = 64

UNLIMITED = TopicLimits(2**31 - 1, 2**31 - 1)
"""No topic limit: nothing is refused before sending (for publishers built without limits)."""

_MAX_MESSAGE_BYTES = "max.message.bytes"
_CLEANUP_POLICY = "cleanup.policy"


async def start_with_retry(
    client: AIOKafkaConsumer | AIOKafkaProducer,
    bootstrap: str,
    seconds: float,
    *,
    group: str | None = None,
) -> None:
    """Start ``client`` (a consumer of ``group``), retrying connection failures for up to
    ``seconds``.

    Raises :class:`StartupError` naming the bootstrap address when it never answers, or the
    operation and resource when an ACL is missing.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    backoff = Backoff(initial=0.2, maximum=2.0)
    kind = "consumer" if isinstance(client, AIOKafkaConsumer) else "producer"
    while True:
        try:
            await client.start()
            return
        except KafkaError as exc:
            await stop_bounded(client, 2.0)
            if isinstance(exc, GroupAuthorizationFailedError) and group is not None:
                refused = not_authorized(exc, "Read", f"consumer group {group!r}")
                raise StartupError(str(refused)) from exc
            if isinstance(exc, AUTHORIZATION_ERRORS):
                raise StartupError(
                    f"not authorized: starting the Kafka {kind} was refused by the broker "
                    f"({describe(exc)})"
                ) from exc
            if not getattr(exc, "retriable", False) or loop.time() + backoff.peek() > deadline:
                raise StartupError(
                    f"Kafka {kind} could not connect to bootstrap servers {bootstrap!r} "
                    f"within {seconds:g}s: {describe(exc)}"
                ) from exc
        await asyncio.sleep(backoff.next_delay())


async def stop_bounded(client: AIOKafkaConsumer | AIOKafkaProducer, seconds: float) -> bool:
    """Stop ``client`` within ``seconds`` (aiokafka's ``stop()`` can hang).

    Returns False when it did not finish in time or failed.
    """
    try:
        await asyncio.wait_for(client.stop(), max(seconds, 0.1))
    except (TimeoutError, KafkaError, OSError):
        return False
    return True


async def output_partition_count(producer: AIOKafkaProducer, topic: str, seconds: float) -> int:
    """The partition count of ``topic``; a missing topic is a :class:`StartupError`."""
    try:
        partitions = await asyncio.wait_for(producer.partitions_for(topic), seconds)
    except (TimeoutError, KafkaError) as exc:
        raise StartupError(
            f"topic {topic!r} is not available within {seconds:g}s: {describe(exc)}"
        ) from exc
    if not partitions:
        raise StartupError(f"topic {topic!r} has no partitions")
    return len(partitions)


async def check_topics(producer: AIOKafkaProducer, settings: WorkerSettings) -> int:
    """Every topic of ``settings`` exists (:class:`StartupError` if not); returns the output
    topic's partition count."""
    timeout = settings.startup_timeout_seconds
    await output_partition_count(producer, settings.input_topic, timeout)
    output_partitions = await output_partition_count(producer, settings.output_topic, timeout)
    await output_partition_count(producer, settings.dlq_topic, timeout)
    if settings.metrics_topic is not None:
        await output_partition_count(producer, settings.metrics_topic, timeout)
    return output_partitions


async def topic_limits(clients: KafkaClients, seconds: float) -> TopicLimits:
    """Read the output and dead-letter topics' limits with the admin client within ``seconds``.

    Connection failures are retried until then; any failure is a :class:`StartupError`
    naming the bootstrap address or the topic. So is a compacted dead-letter topic: it would
    lose dead letters.
    """
    settings = clients.settings
    output, dlq = settings.output_topic, settings.dlq_topic
    bootstrap = settings.bootstrap_servers
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    backoff = Backoff(initial=0.2, maximum=2.0)
    while True:
        admin = clients.admin()
        started = False
        try:
            await asyncio.wait_for(admin.start(), max(deadline - loop.time(), 0.1))
            started = True
            configs = await asyncio.wait_for(
                _describe_topics(admin, list(dict.fromkeys([output, dlq]))),
                max(deadline - loop.time(), 0.1),
            )
            break
        except (TimeoutError, KafkaError) as exc:
            retriable = getattr(exc, "retriable", False)
            late = loop.time() + backoff.peek() > deadline
            if isinstance(exc, TimeoutError) or not retriable or late:
                what = describe(exc) if isinstance(exc, KafkaError) else "timed out"
                if not started:
                    raise StartupError(
                        f"Kafka admin client could not connect to bootstrap servers "
                        f"{bootstrap!r} within {seconds:g}s: {what}"
                    ) from exc
                raise StartupError(
                    f"the configs of topics {output!r} and {dlq!r} could not be read "
                    f"within {seconds:g}s: {what}"
                ) from exc
        finally:
            await _close_admin(admin)
        await asyncio.sleep(backoff.next_delay())
    if "compact" in _config(configs, dlq, _CLEANUP_POLICY).split(","):
        raise StartupError(
            f"dead-letter topic {dlq!r} is compacted (cleanup.policy "
            f"{_config(configs, dlq, _CLEANUP_POLICY)!r}): compaction would drop dead letters "
            "that share a key, and the broker refuses those of keyless messages; use "
            "cleanup.policy=delete"
        )
    return TopicLimits(
        output_max_message_bytes=_int_config(configs, output, _MAX_MESSAGE_BYTES),
        dlq_max_message_bytes=_int_config(configs, dlq, _MAX_MESSAGE_BYTES),
        output_compacted="compact" in _config(configs, output, _CLEANUP_POLICY).split(","),
        max_request_size=settings.max_request_size,
    )


async def _describe_topics(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> dict[str, dict[str, str]]:
    wanted = {_MAX_MESSAGE_BYTES: None, _CLEANUP_POLICY: None}
    resources = [ConfigResource(ConfigResourceType.TOPIC, topic, wanted) for topic in topics]
    configs: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for code, message, _type, name, entries in [r[:5] for r in response.resources]:
            if code != 0:
                error = for_code(code)
                if issubclass(error, AUTHORIZATION_ERRORS):
                    refusal = not_authorized(error(), "DescribeConfigs", f"topic {name!r}")
                    raise StartupError(str(refusal))
                raise StartupError(
                    f"topic {name!r} is not available: {error.__name__}"
                    + (f": {message}" if message else "")
                )
            configs[name] = {entry[0]: entry[1] for entry in entries}
    return configs


def _config(configs: dict[str, dict[str, str]], topic: str, name: str) -> str:
    value = configs.get(topic, {}).get(name)
    if value is None:
        raise StartupError(f"topic {topic!r}: the broker did not return its {name!r}")
    return value


def _int_config(configs: dict[str, dict[str, str]], topic: str, name: str) -> int:
    value = _config(configs, topic, name)
    try:
        return int(value)
    except ValueError:
        raise StartupError(f"topic {topic!r}: {name} {value!r} is not a number") from None


async def _close_admin(admin: AIOKafkaAdminClient) -> None:
    with contextlib.suppress(TimeoutError, KafkaError, OSError):
        await asyncio.wait_for(admin.close(), 2.0)


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


_T = TypeVar("_T")


async def ask(request: Awaitable[_T], seconds: float, what: str) -> _T:
    """Await a Kafka request for at most ``seconds``.

    Raises :class:`KafkaUnanswered` naming ``what`` when it fails or times out, and
    :class:`AuthorizationError` when an ACL is missing.
    """
    try:
        return await asyncio.wait_for(request, seconds)
    except TimeoutError as exc:
        raise KafkaUnanswered(f"{what}: no answer within {seconds:g}s") from exc
    except AUTHORIZATION_ERRORS as exc:
        raise AuthorizationError(
            f"not authorized: {what} was refused by the broker ({type(exc).__name__})"
        ) from exc
    except (KafkaError, AssertionError) as exc:
        raise KafkaUnanswered(f"{what}: {describe(exc)}") from exc


async def getmany(
    consumer: AIOKafkaConsumer, timeout_ms: int, max_records: int, *, topic: str, group: str
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """``consumer.getmany``; a missing ACL on ``topic`` or ``group`` is an
    :class:`AuthorizationError`."""
    try:
        data: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = await consumer.getmany(
            timeout_ms=timeout_ms, max_records=max_records
        )
        return data
    except AUTHORIZATION_ERRORS as exc:
        raise refusal(exc, topic=topic, operation="Read", group=group) from exc


async def commit_offsets(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], group: str
) -> str:
    """Commit ``offsets`` for ``group``; returns "" on success, else why it failed (retried by
    the caller).

    Raises :class:`AuthorizationError` when an ACL is missing: retrying cannot help.
    """
    try:
        await consumer.commit(offsets)
    except AUTHORIZATION_ERRORS as exc:
        topic = min(tp.topic for tp in offsets)
        raise refusal(exc, topic=topic, operation="Read", group=group) from exc
    except CommitFailedError as exc:
        return f"{exc} (group rebalanced)"
    except KafkaError as exc:
        return describe(exc)
    return ""


def highwater(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The last fetched high watermark of ``tp``, or None when not known."""
    try:
        value = consumer.highwater(tp)
    except (KafkaError, AssertionError, KeyError):
        return None
    return None if value is None else int(value)

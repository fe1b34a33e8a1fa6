"""aiokafka construction, start-up retry, bounded stop and error translation.

aiokafka's exceptions are translated here, once, into the worker's own
(:class:`~worker.errors.PublishError`, :class:`~worker.errors.StartupError`,
:class:`~worker.errors.KafkaFatalError`), chained with ``from``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)

from worker.errors import PublishError, StartupError
from worker.settings import WorkerSettings

__all__ = [
    "MAX_BATCH_BYTES",
    "describe",
    "make_consumer",
    "make_producer",
    "output_partition_count",
    "start_with_retry",
    "stop_bounded",
    "to_publish_error",
]

MAX_BATCH_BYTES = 256 * 1024
"""The producer's ``max_batch_size``: the most bytes of one batch of one partition."""

# A message-level refusal: sending the same message again cannot succeed.
_MESSAGE_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


def describe(exc: BaseException) -> str:
    """``Type: message``, without repeating the type when aiokafka's message already has it."""
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def make_consumer(
    settings: WorkerSettings, listener: ConsumerRebalanceListener
) -> AIOKafkaConsumer:
    """The input consumer: explicit commits only, bounded prefetch, subscribed with ``listener``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.group_id,
        client_id=f"packflow-worker-{settings.worker_id}",
        enable_auto_commit=False,
        auto_offset_reset=settings.auto_offset_reset,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        rebalance_timeout_ms=settings.rebalance_timeout_ms,
        fetch_max_bytes=settings.fetch_max_bytes,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        isolation_level=(
            "read_committed" if settings.delivery == "exactly-once" else "read_uncommitted"
        ),
    )
    consumer.subscribe([settings.input_topic], listener=listener)
    return consumer


def make_producer(settings: WorkerSettings, **overrides: Any) -> AIOKafkaProducer:
    """The output producer: acks from all in-sync replicas, idempotent, small linger."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"packflow-worker-{settings.worker_id}",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.linger_ms,
        "max_batch_size": MAX_BATCH_BYTES,
        "max_request_size": 1024 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def start_with_retry(
    client: AIOKafkaConsumer | AIOKafkaProducer, bootstrap: str, seconds: float
) -> None:
    """Start ``client``, retrying connection failures for up to ``seconds``.

    Raises :class:`StartupError` naming the bootstrap address when it never answers.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    delay = 0.2
    kind = "consumer" if isinstance(client, AIOKafkaConsumer) else "producer"
    while True:
        try:
            await client.start()
            return
        except KafkaError as exc:
            await stop_bounded(client, 2.0)
            if not getattr(exc, "retriable", False) or loop.time() + delay > deadline:
                raise StartupError(
                    f"Kafka {kind} could not connect to bootstrap servers {bootstrap!r} "
                    f"within {seconds:g}s: {describe(exc)}"
                ) from exc
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


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


def to_publish_error(exc: BaseException, topic: str) -> PublishError:
    """Translate a send failure; ``retriable`` is False when this message can never be sent."""
    if isinstance(exc, _MESSAGE_ERRORS):
        return PublishError(
            f"broker refused the message for {topic!r}: {type(exc).__name__}: {exc}",
            retriable=False,
        )
    if isinstance(exc, InvalidTopicError | TopicAuthorizationFailedError):
        return PublishError(
            f"cannot publish to {topic!r}: {type(exc).__name__}: {exc}", retriable=True
        )
    return PublishError(
        f"publishing to {topic!r} failed: {type(exc).__name__}: {exc}", retriable=True
    )

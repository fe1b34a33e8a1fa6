"""Kafka calls whose aiokafka errors become the worker's: start, stop, fetch, commit, ask."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    ProducerFenced,
)
from aiokafka.structs import ConsumerRecord

from worker._backoff import Backoff
from worker._kafka.errors import (
    AUTHORIZATION_ERRORS,
    describe,
    not_authorized,
    refusal,
    send_error,
)
from worker.errors import AuthorizationError, KafkaUnanswered, ProducerFencedError, StartupError


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


_T = TypeVar("_T")


async def ask(
    request: Awaitable[_T],
    seconds: float | None,
    what: str,
    *,
    refuse: Callable[[BaseException], AuthorizationError] | None = None,
) -> _T:
    """Await a Kafka request for at most ``seconds`` (None: no limit).

    Raises :class:`KafkaUnanswered` naming ``what`` when it fails or times out,
    :class:`ProducerFencedError` when a newer producer fenced this one, and
    :class:`AuthorizationError` when an ACL is missing (``refuse(exc)`` when given, which
    can name the resource). Other exceptions pass unchanged.
    """
    try:
        return await asyncio.wait_for(request, seconds)
    except TimeoutError as exc:
        within = "" if seconds is None else f" within {seconds:g}s"
        raise KafkaUnanswered(f"{what}: no answer{within}") from exc
    except AUTHORIZATION_ERRORS as exc:
        if refuse is not None:
            raise refuse(exc) from exc
        raise AuthorizationError(
            f"not authorized: {what} was refused by the broker ({type(exc).__name__})"
        ) from exc
    except ProducerFenced as exc:
        raise ProducerFencedError(f"{what}: {describe(exc)}") from exc
    except (KafkaError, AssertionError) as exc:
        # AssertionError: aiokafka's transaction manager refusing a state change after a
        # fatal error (its producer must be restarted).
        raise KafkaUnanswered(f"{what}: {describe(exc)}") from exc


async def send_and_wait(
    producer: AIOKafkaProducer, topic: str, value: bytes, seconds: float
) -> None:
    """Send ``value`` to ``topic`` and wait at most ``seconds`` for its acknowledgement.

    Raises :class:`AuthorizationError` when the worker may not write there, else
    :class:`PublishError` (:func:`~worker._kafka.errors.send_error`).
    """
    try:
        future = await producer.send(topic, value)
        await asyncio.wait_for(future, seconds)
    except (TimeoutError, KafkaError) as exc:
        raise send_error(exc, topic) from exc


async def send(
    producer: AIOKafkaProducer,
    topic: str,
    value: bytes | None,
    *,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    partition: int | None = None,
) -> asyncio.Future[Any]:
    """``producer.send``: the future of the message's acknowledgement.

    A refusal before sending raises :func:`~worker._kafka.errors.send_error`'s error; a
    failed acknowledgement is the future's aiokafka exception (see :func:`send_error`).
    """
    try:
        future: asyncio.Future[Any] = await producer.send(
            topic, value, key=key, headers=headers, partition=partition
        )
    except KafkaError as exc:
        raise send_error(exc, topic) from exc
    return future


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

"""The topics at start-up: they exist, their partition counts, their limits."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaError,
    for_code,
)

from worker._backoff import Backoff
from worker._kafka.errors import AUTHORIZATION_ERRORS, describe, not_authorized
from worker.clients import KafkaClients
from worker.errors import StartupError
from worker.limits import TopicLimits
from worker.settings import WorkerSettings

_MAX_MESSAGE_BYTES = "max.message.bytes"
_CLEANUP_POLICY = "cleanup.policy"


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
            await close_admin(admin)
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


async def close_admin(admin: AIOKafkaAdminClient) -> None:
    """Close ``admin`` within 2 seconds, ignoring its failures (it was only reading)."""
    with contextlib.suppress(TimeoutError, KafkaError, OSError):
        await asyncio.wait_for(admin.close(), 2.0)

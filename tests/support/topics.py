"""Creating a test topic: one ``CreateTopics`` request, then wait until every partition has a
leader. Used by the ``create_topic`` fixtures (plain broker, :func:`plain_admin`, in
``tests/conftest.py``) and by ``SecureAdmin.create_topic`` (secured broker, as admin); each
passes the admin client it connects with.

aiokafka is imported when a topic is made, so ``tests/conftest.py`` can import this module
for tests that need no broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiokafka.admin import AIOKafkaAdminClient

TOPIC_READY_TIMEOUT = 30.0


@contextlib.asynccontextmanager
async def plain_admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client of a broker without security (closed on exit)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="packflow-tests")
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topic(
    client: Callable[[], AbstractAsyncContextManager[AIOKafkaAdminClient]],
    name: str,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    ready_within: float = TOPIC_READY_TIMEOUT,
) -> None:
    """Create ``name`` with an admin client from ``client()``; wait until each of its
    partitions has a leader (``TimeoutError`` after ``ready_within`` seconds)."""
    from aiokafka.admin import NewTopic
    from aiokafka.errors import for_code

    if partitions < 1:
        raise ValueError(f"topic {name!r}: partitions must be >= 1, got {partitions}")
    async with client() as admin:
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=dict(config or {}))]
        )
        for entry in response.topic_errors:
            if entry[1] != 0:
                detail = entry[2] if len(entry) > 2 and entry[2] else for_code(entry[1]).__name__
                raise RuntimeError(f"creating topic {entry[0]!r} failed: {detail}")
        await _wait_for_leaders(admin, name, partitions, time.monotonic() + ready_within)


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, name: str, partitions: int, deadline: float
) -> None:
    state = "no metadata yet"
    while time.monotonic() < deadline:
        topics = await admin.describe_topics([name])
        info = next((t for t in topics if t["topic"] == name), None)
        if info is not None and info["error_code"] == 0:
            leaders = [p["leader"] for p in info["partitions"]]
            if len(leaders) == partitions and all(leader >= 0 for leader in leaders):
                return
            state = f"{len(leaders)}/{partitions} partitions, leaders {sorted(leaders)}"
        elif info is not None:
            state = f"error code {info['error_code']}"
        await asyncio.sleep(0.05)
    raise TimeoutError(f"topic {name!r} has no leader for every partition in time ({state})")

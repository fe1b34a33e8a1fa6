"""The worker's lifecycle state and the one deadline every shutdown step shares."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from typing import Any

from worker.event_loop import loop_name
from worker.settings import WorkerSettings

__all__ = ["Deadline", "State", "finish_task", "started_fields"]


class State(enum.Enum):
    """Where the worker is in its life; ``/readyz`` and the fetch loop read it."""

    STARTING = "starting"
    RUNNING = "running"
    REBALANCING = "rebalancing"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Deadline:
    """A point in time shared by several steps; ``forced`` ends it at once (a second signal)."""

    def __init__(self, seconds: float, forced: asyncio.Event | None = None) -> None:
        self._at = time.monotonic() + seconds
        self._forced = forced

    def remaining(self) -> float:
        """Seconds left, 0 once passed or forced."""
        if self._forced is not None and self._forced.is_set():
            return 0.0
        return max(0.0, self._at - time.monotonic())

    @property
    def forced(self) -> asyncio.Event | None:
        """The event that ends the deadline early, if any."""
        return self._forced


async def finish_task(task: asyncio.Task[Any] | None, deadline: Deadline, logger: Any) -> bool:
    """Wait for ``task`` until ``deadline``; cancel it when late. True if it finished."""
    if task is None or task.done():
        return True
    waiters: set[asyncio.Future[Any]] = {task}
    forced = None if deadline.forced is None else asyncio.ensure_future(deadline.forced.wait())
    if forced is not None:
        waiters.add(forced)
    try:
        await asyncio.wait(waiters, timeout=deadline.remaining(), return_when="FIRST_COMPLETED")
    finally:
        if forced is not None:
            forced.cancel()
    if task.done():
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    logger.warning("shutdown_deadline_exceeded", task=task.get_name())
    return False


def started_fields(
    settings: WorkerSettings, *, backend: str, health_port: int | None
) -> dict[str, Any]:
    """What ``worker_started`` says of the settings (no secret among them), and which event
    loop runs it (call it on that loop)."""
    s = settings
    return {
        "event_loop": loop_name(asyncio.get_running_loop()),
        "backend": backend,
        "health_port": health_port,
        "input_topic": s.input_topic,
        "output_topic": s.output_topic,
        "dlq_topic": s.dlq_topic,
        "metrics_topic": s.metrics_topic,
        "group_id": s.group_id,
        "group_instance_id": s.group_instance_id,
        "security_protocol": s.security_protocol,
        "sasl_mechanism": s.sasl_mechanism,
        "delivery": s.delivery,
        "max_batch_size": s.max_batch_size,
        "executor_threads": s.executor_threads,
    }

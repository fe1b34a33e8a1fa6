"""Backoff pacing, the shared shutdown deadline and waiting for a task under it."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from structlog.testing import capture_logs

from worker._backoff import Backoff
from worker.lifecycle import Deadline, finish_task


def test_backoff_doubles_up_to_its_maximum_and_peek_does_not_advance():
    backoff = Backoff(initial=0.1, maximum=0.5)
    assert backoff.peek() == 0.1
    assert [backoff.next_delay() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert backoff.attempts == 5


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_backoff_refuses_settings_that_cannot_pace(initial, maximum, factor):
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial=initial, maximum=maximum, factor=factor)


async def test_a_forced_deadline_has_no_time_left():
    forced = asyncio.Event()
    deadline = Deadline(60, forced)
    assert 59 < deadline.remaining() <= 60
    forced.set()
    assert deadline.remaining() == 0.0


async def test_finish_task_waits_for_a_task_that_ends_in_time():
    task = asyncio.create_task(asyncio.sleep(0.01))
    assert await finish_task(task, Deadline(5), structlog.get_logger("t"))
    assert task.done()


async def test_finish_task_cancels_a_late_task_and_says_so():
    never = asyncio.Event()
    task = asyncio.create_task(never.wait(), name="pf-stuck")
    forced = asyncio.Event()
    forced.set()  # a second signal: no time left
    with capture_logs() as logs:
        assert not await finish_task(task, Deadline(60, forced), structlog.get_logger("t"))
    assert task.cancelled()
    assert logs[0]["event"] == "shutdown_deadline_exceeded"
    assert logs[0]["task"] == "pf-stuck"

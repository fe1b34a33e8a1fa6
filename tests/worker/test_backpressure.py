"""InFlightBudget bounds records and bytes."""

from __future__ import annotations

import asyncio

import pytest

from worker.backpressure import InFlightBudget


def test_room_is_the_remaining_records_and_zero_once_bytes_are_full():
    budget = InFlightBudget(10, 100)
    assert budget.room() == 10
    budget.take(4, 50)
    assert budget.room() == 6
    budget.take(1, 60)
    assert budget.room() == 0
    budget.release(5, 110)
    assert budget.room() == 10
    assert (budget.peak_records, budget.peak_bytes) == (5, 110)


def test_releasing_more_than_taken_is_a_bug_reported_loudly():
    budget = InFlightBudget(10, 100)
    budget.take(1, 1)
    with pytest.raises(RuntimeError, match="released more than it took"):
        budget.release(2, 1)


async def test_wait_empty_returns_when_the_last_batch_is_released():
    budget = InFlightBudget(10, 100)
    budget.take(3, 30)
    waiter = asyncio.create_task(budget.wait_empty(10))
    await asyncio.sleep(0)
    assert not waiter.done()
    budget.release(3, 30)
    assert await waiter is True


async def test_wait_empty_gives_up_after_its_deadline():
    budget = InFlightBudget(10, 100)
    budget.take(1, 1)
    assert await budget.wait_empty(0.05) is False

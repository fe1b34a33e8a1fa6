"""tune_gc: the start-up heap is frozen and the young generation holds several batches."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from worker._gc import YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_the_heap_and_raises_only_the_young_threshold() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    survivor = [object() for _ in range(100)]
    tune_gc()
    assert gc.get_freeze_count() >= len(survivor)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_never_lowers_a_higher_young_threshold() -> None:
    gc.set_threshold(50_000, 10, 10)
    tune_gc()
    assert gc.get_threshold()[0] == 50_000

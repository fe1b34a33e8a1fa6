"""bench/_wakeups.py: what waking a thread costs, measured in this process."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _wakeups import wake_costs


def measured_in_a_thread() -> tuple[dict[str, dict[str, float]], set[int], set[int]]:
    """wake_costs() as the bench calls it, in a thread of its own: the figures, and the
    CPUs that thread may run on before and after."""
    found: dict[str, dict[str, float]] = {}
    cpus: list[set[int]] = []

    def measure() -> None:
        cpus.append(os.sched_getaffinity(0))
        found.update(wake_costs(trips=50))
        cpus.append(os.sched_getaffinity(0))

    thread = threading.Thread(target=measure)
    thread.start()
    thread.join()
    return found, cpus[0], cpus[1]


def test_every_round_trip_is_timed_and_its_threads_are_gone_after() -> None:
    before = {t.name for t in threading.enumerate()}

    costs, _, _ = measured_in_a_thread()

    pinned = {"same_cpu", "other_cpu"} if len(os.sched_getaffinity(0)) >= 2 else set()
    assert set(costs) == {"thread_round_trip", "executor_hop"} | pinned
    for figures in costs.values():
        assert figures["cpu_us"] > 0
        assert figures["wall_us"] > 0
    assert {t.name for t in threading.enumerate()} == before


def test_the_pinned_round_trips_give_the_calling_thread_its_cpus_back() -> None:
    _, before, after = measured_in_a_thread()

    assert after == before

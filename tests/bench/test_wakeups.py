"""bench/_wakeups.py: what waking a thread costs, measured in this process."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _wakeups import wake_costs


def test_both_round_trips_are_timed_and_their_threads_are_gone_after() -> None:
    before = {t.name for t in threading.enumerate()}

    costs = wake_costs(trips=50)

    assert set(costs) == {"thread_round_trip", "executor_hop"}
    for figures in costs.values():
        assert figures["cpu_us"] > 0
        assert figures["wall_us"] > 0
    assert {t.name for t in threading.enumerate()} == before

"""About 20 us of pure-Python work per record: the cost of the ``busy20us`` workload.

The loop count is calibrated once by the bench driver on this machine and handed to every
contender in the environment variable ``BENCH_BUSY_LOOPS``, so all of them do the same
work; a process started without it calibrates at import. Stdlib only (the pipes import it
in their own venvs).
"""

from __future__ import annotations

import os
import time
from typing import Any

TARGET_US = 20.0
LOOPS_ENV = "BENCH_BUSY_LOOPS"
_PROBE_LOOPS = 20_000


def spin(loops: int, seed: int) -> int:
    """``loops`` steps of a linear congruential generator from ``seed`` (pure Python)."""
    x = seed
    for _ in range(loops):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def loop_ns(repeats: int = 7) -> float:
    """CPU nanoseconds of one :func:`spin` step: the fastest of ``repeats`` probes."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time_ns()
        spin(_PROBE_LOOPS, 1)
        best = min(best, (time.thread_time_ns() - t0) / _PROBE_LOOPS)
    return best


def calibrate(target_us: float = TARGET_US) -> int:
    """The loop count that takes about ``target_us`` of CPU per record on this machine:
    a first guess from one step's cost, corrected once by timing whole records."""
    loops = max(1, round(target_us * 1000.0 / loop_ns()))
    return max(1, round(loops * target_us / record_us(loops)))


def record_us(loops: int, records: int = 2_000) -> float:
    """CPU microseconds :func:`busy` spends per record at ``loops`` (fastest of 3 passes)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.thread_time_ns()
        for i in range(records):
            spin(loops, i)
        best = min(best, (time.thread_time_ns() - t0) / records / 1000.0)
    return best


LOOPS = int(os.environ.get(LOOPS_ENV) or 0) or calibrate()


def busy(record: dict[str, Any]) -> dict[str, Any]:
    """Spend about 20 us on ``record`` and return it with the result in ``busy``."""
    seed = record.get("id")
    record["busy"] = spin(LOOPS, seed if isinstance(seed, int) else 0)
    return record

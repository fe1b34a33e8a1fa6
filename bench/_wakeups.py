"""What waking a thread costs on this machine: the price of the worker's executor hop.

The worker runs each batch's backend call in an executor thread, so every batch wakes that
thread and is woken back by it, and a backend holding the GIL while the loop has work
hands the GIL to and fro. On bare metal a thread round trip costs a few microseconds of
CPU; in a small VM every wake of a sleeping vCPU can trap to the hypervisor and cost tens.
The bench records both figures beside the load average, so a sitting's per-batch costs can
be read against the machine it ran on:

* ``thread_round_trip``: two threads hand one item to and fro over ``queue.SimpleQueue``;
* ``executor_hop``: ``loop.run_in_executor`` of a no-op on a one-thread pool, awaited, on
  the loop the worker takes (``worker.event_loop``, ``auto``): the worker's hop without
  the backend.

Each is the process's CPU (all threads) and the wall time per round trip, in microseconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from typing import Any

from worker.event_loop import run as run_on_loop


def _per_trip(cpu: float, wall: float, trips: int) -> dict[str, float]:
    return {"cpu_us": round(cpu / trips * 1e6, 1), "wall_us": round(wall / trips * 1e6, 1)}


def thread_round_trip(trips: int) -> dict[str, float]:
    """CPU and wall microseconds per round trip between two threads."""
    there: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    back: queue.SimpleQueue[int] = queue.SimpleQueue()

    def echo() -> None:
        while (item := there.get()) is not None:
            back.put(item)

    thread = threading.Thread(target=echo, name="pf-bench-echo")
    thread.start()
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(trips):
            there.put(i)
            back.get()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        there.put(None)
        thread.join()
    return _per_trip(cpu, wall, trips)


async def _hops(trips: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pf-bench-hop") as pool:
        await loop.run_in_executor(pool, int)  # the thread starts outside the timing
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(trips):
            await loop.run_in_executor(pool, int)
        return time.process_time() - cpu, time.perf_counter() - wall


def executor_hop(trips: int) -> dict[str, float]:
    """CPU and wall microseconds per awaited ``run_in_executor`` of a no-op."""
    cpu, wall = run_on_loop(_hops(trips), "auto")
    return _per_trip(cpu, wall, trips)


def wake_costs(trips: int = 2000) -> dict[str, Any]:
    """Both figures (see the module docstring); call it from a thread with no running loop."""
    return {"thread_round_trip": thread_round_trip(trips), "executor_hop": executor_hop(trips)}

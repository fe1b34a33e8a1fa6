"""What waking a thread costs on this machine: the price of the worker's executor hop.

The worker runs each batch's backend call in an executor thread, so every batch wakes that
thread and is woken back by it, and a backend holding the GIL while the loop has work
hands the GIL to and fro. On bare metal a thread round trip costs a few microseconds of
CPU; in a small VM every wake of a sleeping vCPU can trap to the hypervisor and cost tens.
The bench records both figures beside the load average, so a sitting's per-batch costs can
be read against the machine it ran on:

* ``thread_round_trip``: two threads hand one item to and fro over ``queue.SimpleQueue``,
  wherever the scheduler puts them; on Linux with two CPUs or more also ``same_cpu`` (both
  pinned to one CPU: a wake is a local switch) and ``other_cpu`` (pinned to two: a wake
  crosses to the other CPU, which a VM may pay for with an exit to its hypervisor);
* ``executor_hop``: ``loop.run_in_executor`` of a no-op on a one-thread pool, awaited, on
  the loop the worker takes (``worker.event_loop``, ``auto``): the worker's hop without
  the backend.

Each is the process's CPU (all threads) and the wall time per round trip, in microseconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
import time
from typing import Any

from worker.event_loop import run as run_on_loop


def _per_trip(cpu: float, wall: float, trips: int) -> dict[str, float]:
    return {"cpu_us": round(cpu / trips * 1e6, 1), "wall_us": round(wall / trips * 1e6, 1)}


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(threading.get_native_id(), {cpu})


def thread_round_trip(trips: int, cpus: tuple[int, int] | None = None) -> dict[str, float]:
    """CPU and wall microseconds per round trip between two threads; with ``cpus``, the
    calling thread runs on the first (and stays there) and the echoing one on the second."""
    there: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    back: queue.SimpleQueue[int] = queue.SimpleQueue()

    def echo() -> None:
        _pin(None if cpus is None else cpus[1])
        while (item := there.get()) is not None:
            back.put(item)

    allowed = os.sched_getaffinity(0) if cpus is not None else None
    _pin(None if cpus is None else cpus[0])
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
        if allowed is not None:
            os.sched_setaffinity(0, allowed)
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
    """The figures of the module docstring; call it with no running loop in the calling
    thread (the bench: ``asyncio.to_thread``). The pinned round trips put that thread's
    CPUs back as they were before the executor hop is timed."""
    costs: dict[str, Any] = {"thread_round_trip": thread_round_trip(trips)}
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    if len(allowed) >= 2:
        costs["same_cpu"] = thread_round_trip(trips, (allowed[0], allowed[0]))
        costs["other_cpu"] = thread_round_trip(trips, (allowed[0], allowed[1]))
    costs["executor_hop"] = executor_hop(trips)
    return costs

"""One measured phase: a contender drains the shared backlog while CPU is sampled.

Every phase of a run shares a :class:`Sitting` (broker, options, the backlog topic, the
workload and the CPU sampler that watches the broker). A phase starts its contender, waits
until it has written an output for every input (or, for outputs in transactions, has
committed every input offset), reads the outputs' broker timestamps and reports, over the
window between the first and the last output:

* ``records_per_s``: outputs / window (broker LogAppendTime);
* ``process_cpu_s`` and ``process_cpu_s_per_1000``: the contender's user + system CPU in
  the window, and per 1,000 outputs;
* ``broker_cpu_s`` and ``broker_cpu_s_per_1000``: the broker JVM's, the same way;
* ``process_cpu_s_until_done``: the contender's CPU from its start (imports, connecting,
  joining the group) until it was done, for reference;
* ``load_1min``: the machine's 1-minute load average at the phase's start and end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _child import Child
from _common import (
    RESULTS,
    TopicDump,
    create_topic,
    read_topic,
    throughput,
    wait_for_commits,
    wait_for_messages,
)
from _cpu import CpuSampler, process_cpu_seconds
from _workloads import Workload


@dataclass
class Sitting:
    """What every phase of one run shares."""

    bootstrap: str
    args: argparse.Namespace
    rid: str
    input_topic: str
    workload: Workload
    cpu: CpuSampler
    inputs: dict[tuple[int, int], int]
    """``(partition, offset) -> timestamp`` of every backlog message."""

    def topic(self, phase: str, round_no: int, role: str) -> str:
        """A topic name of one phase of one round (``role``: out, dlq, in...)."""
        return f"bench-{self.rid}-{phase}{round_no}-{role}"

    def group(self, phase: str, round_no: int) -> str:
        """The consumer group of one phase of one round."""
        return f"bench-{self.rid}-{phase}{round_no}"

    def log_path(self, phase: str, round_no: int) -> Path:
        """Where a contender's output goes."""
        return RESULTS / f"{phase}-{self.rid}-r{round_no}.log"

    async def output_topic(self, name: str, partitions: int | None = None) -> str:
        """Create an output topic (broker LogAppendTime timestamps) and return its name."""
        await create_topic(
            self.bootstrap, name, partitions or self.args.partitions, log_append_time=True
        )
        return name


def load_1min() -> float:
    """The machine's 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def deadline_for(records: int) -> float:
    """Seconds to wait for a contender to finish: generous, never a measurement."""
    return max(180.0, records / 300.0)


def cpu_figures(cpu: CpuSampler, name: str, start: float, end: float, count: int) -> dict[str, Any]:
    """CPU of contender ``name`` and of the broker between wall times ``start`` and ``end``,
    in seconds and in seconds per 1,000 of ``count`` messages."""
    figures: dict[str, Any] = {}
    for key, series in (("process", name), ("broker", "broker")):
        used = cpu.used(series, start, end)
        figures[f"{key}_cpu_s"] = None if used is None else round(used, 3)
        figures[f"{key}_cpu_s_per_1000"] = (
            None if used is None or count <= 0 else round(used * 1000.0 / count, 5)
        )
    return figures


def window_figures(
    cpu: CpuSampler, name: str, dump: TopicDump, *, count: int | None = None
) -> dict[str, Any]:
    """records/s and CPU over the window between the first and the last output of ``dump``
    (``count``: messages in it, when not every output is a message of ``dump``)."""
    n = len(dump.timestamps) if count is None else count
    if len(dump.timestamps) < 2:
        return {"outputs": n, "records_per_s": None}
    start, end = min(dump.timestamps) / 1000.0, max(dump.timestamps) / 1000.0
    return {
        "outputs": n,
        "records_per_s": round(throughput(dump.timestamps)),
        "window_s": round(end - start, 3),
        **cpu_figures(cpu, name, start, end, n),
    }


async def measure_drain(
    sitting: Sitting,
    name: str,
    child: Child,
    output: str,
    *,
    extra_topics: tuple[str, ...] = (),
    commit_group: str | None = None,
    with_sources: bool = False,
) -> tuple[dict[str, Any], TopicDump]:
    """Watch ``child`` until it has drained the backlog into ``output``; its figures.

    Done is every backlog message out in ``output`` and ``extra_topics`` together, or, with
    ``commit_group``, that group's committed offsets at the end of the backlog (outputs in
    transactions, whose markers take offsets). Raises ``RuntimeError`` with the contender's
    log tail when it dies or misses the deadline.
    """
    records = sitting.args.records
    started, t0 = time.time(), time.monotonic()
    sitting.cpu.watch(name, child.pid)
    try:
        if commit_group is not None:
            await wait_for_commits(
                sitting.bootstrap,
                commit_group,
                sitting.input_topic,
                deadline_for(records),
                alive=child.ok,
            )
        else:
            await wait_for_messages(
                sitting.bootstrap,
                [output, *extra_topics],
                records,
                deadline_for(records),
                alive=child.ok,
            )
    except (TimeoutError, RuntimeError) as exc:
        raise RuntimeError(f"{name} failed: {exc}\n{child.log_tail()}") from exc
    finally:
        sitting.cpu.unwatch(name)
    until_done = process_cpu_seconds(child.pid)
    wall, done = time.monotonic() - t0, time.time()
    dump = await read_topic(sitting.bootstrap, output, with_sources=with_sources)
    result = window_figures(sitting.cpu, name, dump)
    result["wall_s_incl_startup"] = round(wall, 2)
    result["process_cpu_s_until_done"] = None if until_done is None else round(until_done, 2)
    broker = sitting.cpu.used("broker", started, done)
    result["broker_cpu_s_phase"] = None if broker is None else round(broker, 2)
    return result, dump


async def wait_for_exit(child: Child, deadline_s: float) -> int:
    """Wait (without blocking the loop) for ``child`` to exit by itself; its exit code."""
    deadline = time.monotonic() + deadline_s
    while child.alive():
        if time.monotonic() > deadline:
            child.stop(10)
            raise TimeoutError(f"still running after {deadline_s:.0f} s\n{child.log_tail()}")
        await asyncio.sleep(0.05)
    return child.wait(0)

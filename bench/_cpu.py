"""CPU seconds of the processes under test and of the broker, sampled while a phase runs.

A phase's contender (worker, pipe, perf tool) and the broker JVM are sampled from
``/proc/<pid>/stat`` (user + system, all threads) every ``interval`` seconds in a background
task. Figures are read over a window: the time between a phase's first and last output
(the same window its records/s is measured over, so start-up and shutdown are left out) or
the whole phase. The broker's pid comes from the bench broker, from a broker pid file, or
from the process that listens on the bootstrap port.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (``None`` once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes of TCP sockets listening on ``port`` (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def listening_pid(port: int) -> int | None:
    """The pid of the local process that listens on TCP ``port`` (``None``: not found or
    not ours to inspect)."""
    targets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not targets:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(entry.name)
        except OSError:
            continue
    return None


def _pid_file_for(port: int, roots: list[Path]) -> int | None:
    """The pid in a ``scripts/kafka`` state dir (``<root>/.kafka/<name>/broker.pid``) whose
    ``broker.ports`` starts with ``port``, when that process is alive."""
    for root in roots:
        for ports in root.glob(".kafka/*/broker.ports"):
            try:
                if int(ports.read_text().split()[0]) != port:
                    continue
                pid = int((ports.parent / "broker.pid").read_text().strip())
            except (OSError, ValueError, IndexError):
                continue
            if process_cpu_seconds(pid) is not None:
                return pid
    return None


def _checkouts() -> list[Path]:
    """This tree and the main checkout it is a worktree of (where ``scripts/kafka`` keeps
    the brokers it started)."""
    repo = Path(__file__).resolve().parent.parent
    roots = [repo]
    git = repo / ".git"
    if git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        text = git.read_text().strip().removeprefix("gitdir:").strip()
        roots.append(Path(text).resolve().parent.parent.parent)
    return roots


def broker_pid(bootstrap: str) -> int | None:
    """The pid of the broker at ``bootstrap`` when it runs on this machine: the process
    listening on the first address's port, else the pid file of a ``scripts/kafka`` broker
    (this tree's or its main checkout's) on that port; ``None`` when neither is found."""
    host, _, port_text = bootstrap.split(",")[0].rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0", "") or not port_text:
        return None
    port = int(port_text)
    return listening_pid(port) or _pid_file_for(port, _checkouts())


@dataclass
class CpuSampler:
    """Samples the CPU seconds of named processes every ``interval`` seconds.

    Use as ``async with CpuSampler({"broker": pid}) as cpu:``; :meth:`watch` adds a process
    (a contender, once started) and :meth:`unwatch` stops sampling it. Each process keeps
    its own series of ``(wall time, CPU seconds)``; a process that has exited adds none.
    """

    pids: dict[str, int]
    interval: float = 0.05
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def watch(self, name: str, pid: int) -> None:
        """Sample process ``pid`` under ``name`` from now on (a new series)."""
        self.pids[name] = pid
        self.series[name] = ([], [])
        self.sample()

    def unwatch(self, name: str) -> None:
        """Take a last sample of ``name`` and stop sampling it (its series stays)."""
        self.sample()
        self.pids.pop(name, None)

    def sample(self) -> None:
        """Take one sample of every watched process now (wall time from ``time.time()``)."""
        for name, pid in self.pids.items():
            cpu = process_cpu_seconds(pid)
            if cpu is not None:
                times, values = self.series.setdefault(name, ([], []))
                times.append(time.time())
                values.append(cpu)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> CpuSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def at(self, name: str, when: float) -> float | None:
        """CPU seconds of ``name`` at wall time ``when``, interpolated between samples."""
        times, values = self.series.get(name, ([], []))
        if not times:
            return None
        i = bisect.bisect_left(times, when)
        if i <= 0:
            return values[0]
        if i >= len(times):
            return values[-1]
        t0, t1 = times[i - 1], times[i]
        share = (when - t0) / (t1 - t0) if t1 > t0 else 1.0
        return values[i - 1] + share * (values[i] - values[i - 1])

    def used(self, name: str, start: float, end: float) -> float | None:
        """CPU seconds ``name`` used between wall times ``start`` and ``end``."""
        first, last = self.at(name, start), self.at(name, end)
        if first is None or last is None:
            return None
        return max(0.0, last - first)

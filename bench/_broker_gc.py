"""The broker's garbage-collection pauses over a window, from ``jstat -gc`` of its JVM.

A stop-the-world collection in the broker holds every fetch and produce request for its
length, so it shows in every contender's latency. The latency phases read the broker's
collection counters (``jstat -gc <pid>``, run next to the broker's own ``java``) before and
after the run, outside the measured window: how many collections fell in the run and how
long they paused in all (young and full collections, and the pauses of G1's concurrent
cycles where the JVM has them). ``jstat`` gives totals, not the longest pause.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: ``jstat -gc`` columns: collections and their accumulated pause seconds.
_PAUSES = (("YGC", "YGCT"), ("FGC", "FGCT"), ("CGC", "CGCT"))


@dataclass(frozen=True)
class GcCounters:
    """A JVM's collections so far and the seconds they paused it."""

    collections: int
    seconds: float


def parse_jstat_gc(text: str) -> GcCounters:
    """The counters of one ``jstat -gc`` output (a header line, then a line of values).

    A ``-`` (a collector the JVM does not have, e.g. ``CGC`` with SerialGC) counts as 0.
    """
    lines = [line.split() for line in text.strip().splitlines()]
    if len(lines) < 2 or len(lines[0]) != len(lines[-1]):
        raise ValueError(f"not a jstat -gc output: {text!r}")
    values = dict(zip(lines[0], lines[-1], strict=True))
    collections, seconds = 0, 0.0
    for count, time in _PAUSES:
        if values.get(count, "-") != "-":
            collections += int(values[count])
            seconds += float(values[time])
    return GcCounters(collections, seconds)


def jstat_for(pid: int) -> Path | None:
    """The ``jstat`` beside the ``java`` that runs process ``pid`` (None: not found)."""
    try:
        java = Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None
    jstat = java.parent / "jstat"
    return jstat if jstat.is_file() else None


def read_gc(pid: int | None) -> GcCounters | None:
    """The broker JVM's counters now; None without a pid, a ``jstat`` or an answer."""
    jstat = None if pid is None else jstat_for(pid)
    if jstat is None:
        return None
    try:
        done = subprocess.run(
            [str(jstat), "-gc", str(pid)], capture_output=True, text=True, timeout=30, check=True
        )
        return parse_jstat_gc(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def pauses_between(
    before: GcCounters | None, after: GcCounters | None, seconds: float
) -> dict[str, Any] | None:
    """Collections and pause time from ``before`` to ``after``, over a run of ``seconds``."""
    if before is None or after is None or seconds <= 0:
        return None
    collections = after.collections - before.collections
    pause_ms = (after.seconds - before.seconds) * 1000.0
    return {
        "collections": collections,
        "pause_ms": round(pause_ms, 1),
        "mean_pause_ms": round(pause_ms / collections, 1) if collections else None,
        "share_of_run": round(pause_ms / (seconds * 1000.0), 4),
    }

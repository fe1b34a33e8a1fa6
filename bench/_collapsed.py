"""Collapsed stacks (py-spy ``--format raw``) summed up: where the samples went.

Each line of the file is ``frame;frame;...;frame count``, outermost frame first; with
py-spy's ``--threads`` the first frame names the thread, and with ``--nolineno`` a frame is
``function (file)``. A function's *own* samples are those where it is the innermost frame;
its *total* samples those where it is anywhere on the stack (once per stack, recursion
counted once; the frames of the CLI, ``asyncio.run``, the loop's dispatch and thread start,
which are on nearly every stack, are left out of totals). Areas group frames by where their
file lives (aiokafka, the worker, the SDK, asyncio, ...), by the innermost frame.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from pathlib import Path

_THREAD = re.compile(r"^thread \(\w+\)")
#: Frames on (nearly) every stack of the event loop's thread: the CLI, ``asyncio.run`` and
#: the loop's dispatch. Left out of the *total* table, where they would only fill the top.
PLUMBING = (
    "(click/",
    "(worker/cli.py)",
    "(packflow-worker)",
    "(asyncio/runners.py)",
    "(asyncio/base_events.py)",
    "(asyncio/events.py)",
    "(threading.py)",
)
#: (area, a substring of a frame's file) in the order they are tried.
AREAS: list[tuple[str, str]] = [
    ("aiokafka", "aiokafka/"),
    ("worker", "worker/"),
    ("packflow SDK", "packflow/"),
    ("bench backend", "_backend.py"),
    ("structlog", "structlog/"),
    ("prometheus_client", "prometheus_client/"),
    ("asyncio", "asyncio/"),
    ("concurrent.futures / threading", "concurrent/futures/"),
    ("concurrent.futures / threading", "threading.py"),
    ("selectors / socket / ssl", "selectors.py"),
    ("selectors / socket / ssl", "socket.py"),
    ("orjson / numpy / other C", "numpy/"),
]


@dataclass
class Profile:
    """Samples per stack, summed into own and total samples per function and per thread."""

    samples: int = 0
    own: collections.Counter[str] = field(default_factory=collections.Counter)
    total: collections.Counter[str] = field(default_factory=collections.Counter)
    threads: collections.Counter[str] = field(default_factory=collections.Counter)
    areas: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, frames: list[str], count: int) -> None:
        """Count one collapsed stack ``count`` times."""
        if frames and _THREAD.match(frames[0]):
            thread, frames = frames[0], frames[1:]
        else:
            thread = "thread (?)"
        if not frames:
            return
        self.samples += count
        self.threads[thread] += count
        self.own[frames[-1]] += count
        self.areas[area_of(frames[-1])] += count
        for frame in set(frames):
            if not any(marker in frame for marker in PLUMBING):
                self.total[frame] += count

    def top(self, counter: collections.Counter[str], n: int) -> list[dict[str, object]]:
        """The ``n`` largest entries of ``counter`` with their share of all samples (%)."""
        return [
            {"function": name, "samples": c, "percent": round(100.0 * c / self.samples, 1)}
            for name, c in counter.most_common(n)
        ]


def area_of(frame: str) -> str:
    """The area a frame's file belongs to (``other Python`` when none matches)."""
    for area, marker in AREAS:
        if marker in frame:
            return area
    return "other Python"


def read_collapsed(path: Path) -> Profile:
    """Parse a py-spy raw (collapsed stacks) file."""
    profile = Profile()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            profile.add(stack.split(";"), int(count))
    return profile


def summary(profile: Profile, n: int = 25) -> dict[str, object]:
    """The profile as a result document: top ``n`` functions by own and by total samples,
    samples per thread and per area."""
    return {
        "samples": profile.samples,
        "top_own": profile.top(profile.own, n),
        "top_total": profile.top(profile.total, n),
        "threads": profile.top(profile.threads, 10),
        "areas_by_own": profile.top(profile.areas, len(AREAS) + 1),
    }

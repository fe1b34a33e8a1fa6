"""The ``together``, ``together_best`` and ``ab`` phases: two contenders drain the backlog at
the same time.

``together`` runs the worker beside Quix Streams; ``together_best`` beside the best aiokafka
pipe; ``ab`` beside the worker of another source tree (``--baseline``: a ``git worktree`` of
an earlier commit), to measure a change of the worker.

Run one after the other, two contenders meet different machines: on this 2-core machine
the same command's CPU per message moves by up to 2x within a minute, so a ratio of two
phases carries that noise. Run at once, each with its own consumer group and output topic,
both meet the same machine. Their CPU per message is read over the window in which both
were writing outputs (from the later first output to the earlier last one), counting each
one's outputs in that window (``bench/_phase.py`` reads CPU the same way). Each contender
shares the cores with the other, so records/s here is no ceiling; CPU per message is the
figure.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from _common import TopicDump
from _contenders import ensure_venv, pipe_drain, worker_drain
from _phase import Sitting, cpu_figures

#: The phase's rows, worker then Quix; each is also the name of its drain's CPU series.
ROWS = ("together_worker", "together_quix")
#: The ``together_best`` phase's rows: the worker, then the best aiokafka pipe.
BEST_ROWS = ("together_best_worker", "together_best_pipe")
#: The ``ab`` phase's rows: this tree's worker, then the baseline tree's.
AB_ROWS = ("ab_worker", "ab_baseline")


def common_window(dumps: list[TopicDump]) -> tuple[float, float] | None:
    """Wall seconds from the latest first output to the earliest last one (None: empty)."""
    if any(len(d.timestamps) < 2 for d in dumps):
        return None
    start = max(min(d.timestamps) for d in dumps) / 1000.0
    end = min(max(d.timestamps) for d in dumps) / 1000.0
    return (start, end) if end > start else None


def in_window(dump: TopicDump, window: tuple[float, float]) -> int:
    """Outputs of ``dump`` appended within ``window`` (wall seconds, ends included)."""
    low, high = window[0] * 1000.0, window[1] * 1000.0
    return sum(1 for t in dump.timestamps if low <= t <= high)


async def together_phase(sitting: Sitting, round_no: int) -> dict[str, Any]:
    """The worker and Quix Streams drain the backlog at once (see :func:`side_by_side`)."""
    ensure_venv("quix")  # before either starts: the install would hold up one of them
    drains = await asyncio.gather(
        worker_drain(sitting, round_no, ROWS[0]),
        pipe_drain(sitting, round_no, "quix", ROWS[1]),
    )
    return side_by_side(sitting, ROWS, list(drains))


async def together_best_phase(sitting: Sitting, round_no: int) -> dict[str, Any]:
    """The worker and the best aiokafka pipe drain the backlog at once (see
    :func:`side_by_side`)."""
    drains = await asyncio.gather(
        worker_drain(sitting, round_no, BEST_ROWS[0]),
        pipe_drain(sitting, round_no, "best", BEST_ROWS[1]),
    )
    return side_by_side(sitting, BEST_ROWS, list(drains))


async def ab_phase(sitting: Sitting, round_no: int, baseline: Path) -> dict[str, Any]:
    """This tree's worker and ``baseline``'s drain the backlog at once (see
    :func:`side_by_side`); ``--baseline-arg`` options go to the baseline's only."""
    drains = await asyncio.gather(
        worker_drain(sitting, round_no, AB_ROWS[0]),
        worker_drain(
            sitting, round_no, AB_ROWS[1], source=baseline, extra_args=sitting.args.baseline_arg
        ),
    )
    return side_by_side(sitting, AB_ROWS, list(drains))


def side_by_side(
    sitting: Sitting, names: tuple[str, str], drains: list[tuple[dict[str, Any], TopicDump]]
) -> dict[str, Any]:
    """Two drains that ran at once: each one's figures over the window both were writing in
    (``rows``), and over its own drain (``alone_window``)."""
    window = common_window([dump for _, dump in drains])
    if window is None:
        raise RuntimeError(f"{names[0]} and {names[1]} wrote no outputs at the same time")
    start, end = window
    rows: dict[str, Any] = {}
    for name, (_, dump) in zip(names, drains, strict=True):
        count = in_window(dump, window)
        rows[name] = {
            "outputs": count,
            "records_per_s": round(count / (end - start)),
            **cpu_figures(sitting.cpu, name, start, end, count),
        }
    return {
        "window_s": round(end - start, 3),
        "rows": rows,
        "alone_window": {
            name: _own(result) for name, (result, _) in zip(names, drains, strict=True)
        },
    }


def _own(result: dict[str, Any]) -> dict[str, Any]:
    """A contender's figures over its own first-to-last output window."""
    keys = ("outputs", "records_per_s", "window_s", "process_cpu_s_per_1000")
    return {k: result.get(k) for k in keys}

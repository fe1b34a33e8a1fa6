"""The together phase's shared window (bench/_together.py) and its ratio row, pure logic."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _common import TopicDump
from _report import ratios, summarise
from _together import common_window, in_window


def test_the_window_runs_from_the_later_first_output_to_the_earlier_last_one() -> None:
    worker = TopicDump(timestamps=[1_000, 1_500, 2_000, 2_500])
    quix = TopicDump(timestamps=[1_200, 1_800, 3_000])

    window = common_window([worker, quix])

    assert window == (1.2, 2.5)
    assert in_window(worker, window) == 3  # 1,500, 2,000 and 2,500 (the end is included)
    assert in_window(quix, window) == 2  # 1,200 (the start is included) and 1,800


def test_no_window_when_the_contenders_never_wrote_at_the_same_time() -> None:
    assert common_window([TopicDump([1_000, 1_100]), TopicDump([2_000, 2_100])]) is None
    assert common_window([TopicDump([1_000, 2_000]), TopicDump([1_500])]) is None


def side_by_side_round(round_no: int, phase: str, cpus: dict[str, float]) -> dict[str, object]:
    """One round of a phase run at once (``together``, ``together_best``): its rows' CPU."""
    rows = {
        name: {"records_per_s": 40_000, "process_cpu_s_per_1000": cpu} for name, cpu in cpus.items()
    }
    result = {"window_s": 3.0, "rows": rows, "load_1min": [1.0, 1.2]}
    return {"round": round_no, "phases": {phase: result}}


@pytest.mark.parametrize(
    ("phase", "ratio", "rounds_cpu", "per_round", "value", "met"),
    [
        (
            "together",
            "worker_cpu_over_quix_cpu_together",  # the worker's CPU over Quix's
            [
                {"together_worker": 0.012, "together_quix": 0.020},
                {"together_worker": 0.015, "together_quix": 0.018},
            ],
            [0.6, 0.833],
            round(0.0135 / 0.019, 3),
            False,
        ),
        (
            "together_best",
            "worker_over_best_per_cpu_together",  # the pipe's CPU over the worker's
            [
                {"together_best_worker": 0.012, "together_best_pipe": 0.0108},
                {"together_best_worker": 0.010, "together_best_pipe": 0.0095},
            ],
            [0.9, 0.95],
            round(0.01015 / 0.011, 3),
            True,
        ),
    ],
)
def test_a_side_by_side_phase_gives_its_ratio_from_its_own_rows(
    phase: str,
    ratio: str,
    rounds_cpu: list[dict[str, float]],
    per_round: list[float],
    value: float,
    met: bool,
) -> None:
    rounds = [side_by_side_round(i, phase, cpus) for i, cpus in enumerate(rounds_cpu, 1)]

    summary = summarise(rounds)
    found = ratios(summary, rounds)[ratio]

    for name in rounds_cpu[0]:
        by_round = [cpus[name] for cpus in rounds_cpu]
        assert summary[name]["process_cpu_s_per_1000_by_round"] == by_round
    assert found["per_round"] == per_round
    assert found["value"] == value
    assert found["met"] is met

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
    ("phase", "ratio", "rounds_cpu", "per_round", "value", "of_medians", "met"),
    [
        (
            "together",
            "worker_cpu_over_quix_cpu_together",  # the worker's CPU over Quix's
            [
                {"together_worker": 0.012, "together_quix": 0.020},
                # A slow round: both contenders at twice the CPU per message.
                {"together_worker": 0.026, "together_quix": 0.040},
                {"together_worker": 0.014, "together_quix": 0.016},
            ],
            [0.6, 0.65, 0.875],
            0.65,
            round(0.014 / 0.020, 3),  # the medians come from different rounds
            True,
        ),
        (
            "together_best",
            "worker_over_best_per_cpu_together",  # the pipe's CPU over the worker's
            [
                {"together_best_worker": 0.012, "together_best_pipe": 0.0114},
                {"together_best_worker": 0.024, "together_best_pipe": 0.0216},
                {"together_best_worker": 0.010, "together_best_pipe": 0.0080},
            ],
            [0.95, 0.9, 0.8],
            0.9,
            round(0.0114 / 0.012, 3),
            True,
        ),
    ],
)
def test_a_side_by_side_ratio_is_the_median_of_its_same_window_pairs(
    phase: str,
    ratio: str,
    rounds_cpu: list[dict[str, float]],
    per_round: list[float],
    value: float,
    of_medians: float,
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
    assert found["statistic"] == "median of same-window pairs"
    assert found["ratio_of_medians"] == of_medians
    assert found["met"] is met


def test_a_ratio_of_phases_run_one_after_the_other_is_the_ratio_of_their_medians() -> None:
    def drain(records_per_s: int) -> dict[str, object]:
        return {"records_per_s": records_per_s, "process_cpu_s_per_1000": 0.012}

    speeds = [(40_000, 50_000), (30_000, 60_000), (45_000, 40_000)]
    rounds = [
        {"round": i, "phases": {"worker": drain(w), "best": drain(b)}}
        for i, (w, b) in enumerate(speeds, 1)
    ]

    found = ratios(summarise(rounds), rounds)["worker_over_best"]

    assert found["per_round"] == [0.8, 0.5, 1.125]
    assert found["value"] == round(40_000 / 50_000, 3)
    assert found["statistic"] == "ratio of medians"
    assert "ratio_of_medians" not in found
    assert found["met"] is False

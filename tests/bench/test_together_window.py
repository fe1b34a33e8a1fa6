"""The together phase's shared window (bench/_together.py) and its ratio row, pure logic."""

from __future__ import annotations

import sys
from pathlib import Path

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


def test_the_together_rows_give_their_own_cpu_ratio() -> None:
    def together(worker_cpu: float, quix_cpu: float) -> dict[str, object]:
        rows = {
            "together_worker": {"records_per_s": 50_000, "process_cpu_s_per_1000": worker_cpu},
            "together_quix": {"records_per_s": 48_000, "process_cpu_s_per_1000": quix_cpu},
        }
        return {"window_s": 3.0, "rows": rows, "load_1min": [1.0, 1.2]}

    rounds = [
        {"round": 1, "phases": {"together": together(0.012, 0.020)}},
        {"round": 2, "phases": {"together": together(0.015, 0.018)}},
    ]

    summary = summarise(rounds)
    found = ratios(summary, rounds)["worker_cpu_over_quix_cpu_together"]

    assert summary["together_worker"]["process_cpu_s_per_1000_by_round"] == [0.012, 0.015]
    assert found["per_round"] == [0.6, 0.833]
    assert found["value"] == round(0.0135 / 0.019, 3)
    assert found["met"] is False


def test_the_together_best_rows_give_the_workers_messages_per_cpu_over_the_pipes() -> None:
    def together_best(worker_cpu: float, pipe_cpu: float) -> dict[str, object]:
        rows = {
            "together_best_worker": {"records_per_s": 40_000, "process_cpu_s_per_1000": worker_cpu},
            "together_best_pipe": {"records_per_s": 45_000, "process_cpu_s_per_1000": pipe_cpu},
        }
        return {"window_s": 3.0, "rows": rows, "load_1min": [1.0, 1.2]}

    rounds = [
        {"round": 1, "phases": {"together_best": together_best(0.012, 0.0108)}},
        {"round": 2, "phases": {"together_best": together_best(0.010, 0.0095)}},
    ]

    summary = summarise(rounds)
    found = ratios(summary, rounds)["worker_over_best_per_cpu_together"]

    assert summary["together_best_pipe"]["process_cpu_s_per_1000_by_round"] == [0.0108, 0.0095]
    assert found["per_round"] == [0.9, 0.95]  # the pipe's CPU per message over the worker's
    assert found["value"] == round(0.01015 / 0.011, 3)
    assert found["met"] is True

"""The latency_best phase (bench/_latency.py, worker_throughput.py, _report.py): the best
pipe at the worker's latency rate, closing each round beside the latency phase; pure logic."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _contenders import pipe_command
from _report import latency_summary, summarise
from _workloads import WORKLOADS
from worker_throughput import order_of, parse_args


def test_the_latency_phases_close_every_round_after_the_rotated_backlog_phases() -> None:
    phases = ["worker", "best", "quix", "latency", "latency_best"]

    assert order_of(1, phases) == ["worker", "best", "quix", "latency", "latency_best"]
    assert order_of(2, phases) == ["best", "quix", "worker", "latency", "latency_best"]


def test_latency_best_needs_the_worker_s_rate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--phases", "latency_best"])
    assert "the latency_best phase needs the worker phase" in capsys.readouterr().err

    assert parse_args(["--phases", "latency_best", "--latency-rate", "1000"]).phases == [
        "latency_best"
    ]


def test_the_best_pipe_reads_the_latency_topic_and_stops_after_its_records() -> None:
    class FakeSitting:  # only what pipe_command reads
        bootstrap = "127.0.0.1:9092"
        input_topic = "backlog"
        workload = WORKLOADS["identity"]
        args = parse_args(["--records", "1000"])

    command, _ = pipe_command(
        FakeSitting(),  # type: ignore[arg-type]
        "best",
        "g",
        "lat-out",
        input_topic="lat-in",
        count=1200,
    )

    assert command[command.index("--input-topic") + 1] == "lat-in"
    assert command[command.index("--count") + 1] == "1200"
    assert "--pipelined" in command


def test_the_best_pipe_s_latency_is_summed_up_apart_with_no_target() -> None:
    def run(p99: float) -> dict[str, object]:
        split = {"p50_ms": 10.0, "p99_ms": p99}
        return {
            "achieved_rate_per_s": 1000,
            "latency": split,
            "latency_to_input": split,
            "latency_through_worker": split,
        }

    rounds = [
        {"round": 1, "phases": {"latency": run(60.0), "latency_best": run(30.0)}},
        {"round": 2, "phases": {"latency": run(80.0), "latency_best": run(40.0)}},
    ]

    worker, best = latency_summary(rounds), latency_summary(rounds, "latency_best")

    assert worker is not None
    assert best is not None
    assert (worker["p99_ms"], worker["met"]) == (70.0, False)
    assert (best["p99_ms"], best["met"], best["target"]) == (35.0, None, "-")
    assert summarise(rounds) == {}  # neither is a backlog row

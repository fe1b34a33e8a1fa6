"""The ab phase (bench/_together.py): its command line, the baseline tree's worker and its
ratio row, pure logic."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _report import ratios, summarise
from _worker_process import WorkerRun
from worker_throughput import parse_args

REPO = Path(__file__).resolve().parents[2]


def test_the_ab_phase_runs_only_when_named_and_needs_a_baseline_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "ab" not in parse_args([]).phases
    with pytest.raises(SystemExit):
        parse_args(["--phases", "ab"])
    assert "the ab phase needs --baseline DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--phases", "ab", "--baseline", str(tmp_path)])
    assert f"--baseline {tmp_path}: no worker package there" in capsys.readouterr().err

    args = parse_args(["--phases", "worker,ab", "--baseline", str(REPO)])

    assert args.phases == ["worker", "ab"]
    assert args.baseline == REPO


def test_a_baseline_worker_imports_the_baseline_tree_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    run = WorkerRun("127.0.0.1:9092", "in", "out", "dlq", "g", tmp_path / "log", source=tmp_path)

    assert run.environment()["PYTHONPATH"] == f"{tmp_path}:/elsewhere"
    own = WorkerRun("127.0.0.1:9092", "in", "out", "dlq", "g", tmp_path / "log")
    assert own.environment()["PYTHONPATH"] == "/elsewhere"  # this tree's worker: untouched


def test_the_ab_rows_give_the_change_s_cpu_ratio() -> None:
    def ab(new_cpu: float, old_cpu: float) -> dict[str, object]:
        rows = {
            "ab_worker": {"records_per_s": 30_000, "process_cpu_s_per_1000": new_cpu},
            "ab_baseline": {"records_per_s": 31_000, "process_cpu_s_per_1000": old_cpu},
        }
        return {"window_s": 3.0, "rows": rows, "load_1min": [1.0, 1.2]}

    rounds = [
        {"round": 1, "phases": {"ab": ab(0.018, 0.020)}},
        {"round": 2, "phases": {"ab": ab(0.016, 0.016)}},
    ]

    found = ratios(summarise(rounds), rounds)["worker_cpu_over_baseline_cpu_ab"]

    assert found["per_round"] == [0.9, 1.0]
    assert found["value"] == 0.95  # the median of the pairs
    assert found["ratio_of_medians"] == round(0.017 / 0.018, 3)
    assert found["met"] is None

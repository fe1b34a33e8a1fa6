"""What the reference pipes do per batch (bench/_workloads.py, bench/_contenders.py): the
worker's job in every workload, bytes forwarded only in the forward phase. Pure logic."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _contenders import pipe_command
from _pipe_args import pipe_parser
from _records import make_record
from _workloads import WORKLOADS, apply_batch
from worker_throughput import PHASES, parse_args


def test_the_identity_pipes_decode_run_the_backend_and_encode() -> None:
    workload = WORKLOADS["identity"]
    values = [make_record(i) for i in range(3)]
    calls: list[int] = []
    real = workload.pipe_backend()
    assert real is not None

    def backend(records: list[dict[str, object]]) -> list[dict[str, object]]:
        calls.append(len(records))
        return real(records)

    outputs = apply_batch(backend, values)

    assert calls == [3]  # one backend call per fetched batch
    assert [orjson.loads(o) for o in outputs] == [orjson.loads(v) for v in values]


def test_forward_bytes_runs_no_backend_and_forwards_the_values_untouched() -> None:
    values = [make_record(i) for i in range(3)]

    assert WORKLOADS["identity"].pipe_backend(forward_bytes=True) is None
    assert apply_batch(None, values) is values
    assert pipe_parser("a pipe").parse_args([*_required(), "--forward-bytes"]).forward_bytes
    assert not pipe_parser("a pipe").parse_args(_required()).forward_bytes


def test_the_forward_phase_is_the_best_pipe_forwarding_bytes() -> None:
    args = parse_args(["--records", "1000"])
    assert "forward" in PHASES
    assert args.phases.index("forward") > args.phases.index("best")

    class FakeSitting:  # only what pipe_command reads
        bootstrap = "127.0.0.1:9092"
        input_topic = "in"
        workload = WORKLOADS["identity"]

    FakeSitting.args = args  # type: ignore[attr-defined]
    forward, _ = pipe_command(FakeSitting(), "forward", "g", "out")  # type: ignore[arg-type]
    best, _ = pipe_command(FakeSitting(), "best", "g", "out")  # type: ignore[arg-type]

    assert forward[-2:] == ["--pipelined", "--forward-bytes"]
    assert best[-1] == "--pipelined"
    assert "--forward-bytes" not in best


def _required() -> list[str]:
    topics = ["--bootstrap", "b", "--input-topic", "i", "--output-topic", "o", "--group-id", "g"]
    return [*topics, "--count", "1"]

"""`make demo`'s core (scripts/demo.py run_demo) against the session's real Kafka broker."""

from __future__ import annotations

import base64
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.kafka

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
BAD_CASES = {"not JSON": "decode", "not UTF-8": "decode", "JSON scalar": "decode"}


def _load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("packflow_demo_script", DEMO)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


async def test_demo_sends_every_input_to_an_output_or_a_dead_letter(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    demo = _load_demo()
    lines: list[str] = []
    result = await demo.run_demo(
        kafka_bootstrap, say=lines.append, wait_seconds=60, worker_log=tmp_path / "worker.log"
    )
    cases = [item.case for item in demo.sample_inputs()]
    assert sorted(i.case for i in result.inputs.values()) == sorted(cases)
    assert set(result.outputs).isdisjoint(result.dead_letters)
    assert set(result.outputs) | set(result.dead_letters) == set(result.inputs)

    for position, item in result.inputs.items():
        if item.case == "normal":
            assert result.outputs[position]["is_anomaly"] is False
        elif item.case == "anomaly":
            assert result.outputs[position]["is_anomaly"] is True
        elif item.case == "array of 3":
            outputs = result.outputs[position]
            assert isinstance(outputs, list)
            assert [o["id"] for o in outputs] == ["m-01", "m-02", "m-03"]
        else:
            letter = result.dead_letters[position]
            assert base64.b64decode(letter["value"]) == item.value
            assert letter["source"]["offset"] == position[1]
            expected_step = BAD_CASES.get(item.case, "execute")
            assert letter["error"]["step"] == expected_step, letter
            if item.case == "missing feature":
                assert "missing feature 'vibration_mm_s'" in letter["error"]["message"]

    first = min(result.outputs)
    headers = result.output_headers[first]
    assert headers["demo-case"] == result.inputs[first].case.encode()
    assert headers["packflow-source"].endswith(f"/{first[0]}/{first[1]}".encode())
    assert all(e["backend"] == "AnomalyScorer" for e in result.metric_events)
    assert sum(e["batch_size"] for e in result.metric_events) == len(result.inputs)
    assert sum(e["dead_letters"] for e in result.metric_events) == len(result.dead_letters)
    assert result.worker_exit_code == 0
    assert any(e.get("event") == "worker_stopped" for e in result.worker_events)
    text = "\n".join(lines)
    assert "All 16 inputs accounted for: 12 outputs, 4 dead letters" in text
    assert "Worker exited 0" in text
    assert (tmp_path / "worker.log").read_text().count("batch_metrics") >= 1

"""Same inputs, same results as packflow 0.4.1: the golden corpus of its preprocessors.

``tests/data/preprocessors_0_4_1.json`` holds, for every case of a matrix of configurations x
input batches, what the published packflow 0.4.1 returned (``scripts/preprocessor_corpus.py``
ran it). Where 0.4.1 returns a result, ours must be identical: values, keys, key order,
types, and for arrays dtype and shape. Where 0.4.1 raises, we must raise too.
"""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
CORPUS = json.loads((REPO / "tests" / "data" / "preprocessors_0_4_1.json").read_text())

_spec = importlib.util.spec_from_file_location(
    "preprocessor_corpus", REPO / "scripts" / "preprocessor_corpus.py"
)
assert _spec is not None
assert _spec.loader is not None
corpus_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus_script)

CASES_BY_CONFIG: dict[int, list[tuple[str, Any]]] = defaultdict(list)
for _config_id, _batch_id, _expected in CORPUS["cases"]:
    CASES_BY_CONFIG[_config_id].append((_batch_id, _expected))


def test_the_corpus_covers_the_matrix() -> None:
    configs = CORPUS["configs"]
    assert CORPUS["packflow_version"] == "0.4.1"
    assert {c["input_format"] for c in configs} == {"records", "numpy", "passthrough"}
    assert {c["nested_field_delimiter"] for c in configs} == {".", "__"}
    assert len(CORPUS["cases"]) > 10_000
    results = [expected for _c, _b, expected in CORPUS["cases"]]
    assert any("error" in r for r in results)
    assert any("ndarray" in r and r["ndarray"]["dtype"] == "|O" for r in results)


def _label(config_id: int) -> str:
    config = CORPUS["configs"][config_id]
    return f"{config_id}-{config['input_format']}"


@pytest.mark.parametrize("config_id", sorted(CASES_BY_CONFIG), ids=_label)
def test_same_results_as_0_4_1(config_id: int) -> None:
    config = CORPUS["configs"][config_id]
    mismatches = []
    for batch_id, expected in CASES_BY_CONFIG[config_id]:
        ours = corpus_script.run_case(config, CORPUS["inputs"][batch_id])
        if "error" in expected:
            if "error" not in ours:
                mismatches.append(f"{batch_id}: 0.4.1 raises {expected['error']}, we return {ours}")
        elif json.dumps(ours) != json.dumps(expected):
            mismatches.append(f"{batch_id}:\n  0.4.1: {expected}\n  ours:  {ours}")
    assert not mismatches, f"config {config}\n" + "\n".join(mismatches)

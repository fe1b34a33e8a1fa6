"""Golden corpus: what the published packflow 0.4.1's preprocessors return, case by case.

Usage::

    .venv/bin/python scripts/preprocessor_corpus.py  # -> tests/data/preprocessors_0_4_1.json

Builds a matrix of backend configurations (``input_format``, ``rename_fields``,
``feature_names`` flat / dotted / repeated / missing, ``flatten_nested_inputs``,
``flatten_lists``, ``nested_field_delimiter``, ``ignore_delimiter_collisions``) crossed with
input batches (nested dicts, lists, ``None`` values, missing fields, strings, keys that
contain the delimiter, empty dicts, mixed numbers, the empty batch), runs every case through
``packflow==0.4.1`` in its own venv (``bench/.venv-packflow041``, created by
``bench/sdk_speed.py``'s mechanism if absent), and writes the cases with 0.4.1's result:
records as JSON (key order kept), arrays as dtype, shape and ``tolist()``, or the name of the
exception 0.4.1 raised. ``tests/packflow/backend/test_preprocessor_corpus.py`` compares this
SDK with the file. Re-run it only to extend the matrix; the file is committed.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "tests" / "data" / "preprocessors_0_4_1.json"

DELIMITERS = [".", "__"]


def _path(*parts: str, d: str) -> str:
    return d.join(parts)


def renames(d: str) -> list[dict[str, str]]:
    return [
        {},
        {"a": "A"},
        {_path("n", "x", d=d): "nx"},
        {"a": _path("m", "a", d=d)},  # nested target
        {"a": "b"},  # target is an existing field
        {"b": "a", "a": "b"},  # swap
    ]


def feature_lists(d: str) -> list[list[str]]:
    return [
        [],
        ["a", "b"],  # flat
        ["b", "a"],  # order
        [_path("n", "x", d=d), "a"],  # dotted
        [_path("n", "y", "z", d=d), _path("n", "x", d=d)],  # deeper
        ["n"],  # a sub-dict as a feature
        ["a", "a", "b"],  # repeated
        ["missing", "a"],  # missing
        ["A", "nx", "b"],  # names after the renames above
        [_path("m", "a", d=d), "b"],
    ]


def inputs(d: str) -> dict[str, list[dict[str, Any]]]:
    key = _path("n", "x", d=d)
    return {
        "flat": [{"a": 1, "b": 2.5, "c": "s"}, {"a": 3, "b": 4.0, "c": "t"}],
        "nested": [{"a": 1, "n": {"x": 10, "y": {"z": 1.5}}, "b": 2}],
        "lists": [{"a": [1, 2], "n": {"x": [3], "l": []}, "b": 1}],
        "none_values": [{"a": None, "b": 2, "n": {"x": None, "y": {"z": None}}}],
        "missing_fields": [{"b": 1}, {"a": 2, "n": {}}, {}],
        "strings": [{"a": "x", "b": "yy", "n": {"x": "zzz", "y": {"z": "q"}}}],
        "delimiter_key_top": [{key: 5, "n": {"x": 6}, "a": 1, "b": 0}],
        "delimiter_key_only": [{key: 5, "a": 1, "b": 2}],
        "delimiter_key_deep": [{"n": {_path("x", "y", d=d): 1, "x": 2}, "a": 1, "b": 3}],
        "empty_containers": [{"a": {}, "n": {"x": []}, "b": 1}],
        "mixed_numbers": [{"a": 1, "b": True}, {"a": 2.5, "b": False}],
        "ints": [{"a": 1, "b": 2, "n": {"x": 3, "y": {"z": 4}}}, {"a": 5, "b": 6, "n": {"x": 7}}],
        "empty_batch": [],
    }


def matrix() -> dict[str, Any]:
    """Configs, input batches and the cases that pair them (by id)."""
    configs: list[dict[str, Any]] = []
    batches: dict[str, list[dict[str, Any]]] = {}
    cases: list[list[str | int]] = []
    for d in DELIMITERS:
        batch_ids = []
        for name, batch in inputs(d).items():
            batch_id = f"{name}[{d}]"
            batches[batch_id] = batch
            batch_ids.append(batch_id)
        flatten_modes = [(False, False), (True, False), (True, True)]
        for rename, features, (flatten, lists), ignore in itertools.product(
            renames(d), feature_lists(d), flatten_modes, [False, True]
        ):
            configs.append(
                {
                    "input_format": "records",
                    "rename_fields": rename,
                    "feature_names": features,
                    "flatten_nested_inputs": flatten,
                    "flatten_lists": lists,
                    "nested_field_delimiter": d,
                    "ignore_delimiter_collisions": ignore,
                }
            )
        for rename, features in itertools.product(renames(d), feature_lists(d)):
            configs.append(
                {
                    "input_format": "numpy",
                    "rename_fields": rename,
                    "feature_names": features,
                    "nested_field_delimiter": d,
                }
            )
        configs.append({"input_format": "passthrough", "nested_field_delimiter": d})
        for config_id in range(len(configs)):
            if configs[config_id]["nested_field_delimiter"] == d:
                cases.extend([config_id, batch_id] for batch_id in batch_ids)
    return {"configs": configs, "inputs": batches, "cases": cases}


# -- the result encoding, shared with the test ---------------------------------------------------


def encode_result(result: Any) -> Any:
    """A preprocessor's result as JSON data: records as they are, arrays described."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - both environments have numpy
        np = None
    if np is not None and isinstance(result, np.ndarray):
        return {
            "ndarray": {
                "dtype": result.dtype.str,
                "shape": list(result.shape),
                "values": result.tolist(),
            }
        }
    return {"records": result}


def run_case(config: dict[str, Any], batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Run one case with the packflow importable here; an exception gives ``{"error": name}``."""
    import copy

    from packflow import BackendConfig
    from packflow.backend.preprocessors import get_preprocessor

    try:
        preprocessor = get_preprocessor(BackendConfig(**config))
        result = preprocessor(copy.deepcopy(batch))
        return encode_result(result)
    except Exception as exc:
        return {"error": type(exc).__name__}


def child_main() -> None:
    """In the 0.4.1 venv: read the matrix on stdin, print the results (one per case)."""
    data = json.load(sys.stdin)
    results = [
        run_case(data["configs"][config_id], data["inputs"][batch_id])
        for config_id, batch_id in data["cases"]
    ]
    json.dump(results, sys.stdout)


def main() -> None:
    if "--child" in sys.argv:
        child_main()
        return
    sys.path.insert(0, str(REPO / "bench"))
    from sdk_speed import BASELINE_PYTHON, ensure_baseline

    ensure_baseline()
    data = matrix()
    with tempfile.TemporaryDirectory() as cwd:  # keep this repo's packflow/ off sys.path
        done = subprocess.run(
            [str(BASELINE_PYTHON), str(Path(__file__).resolve()), "--child"],
            input=json.dumps(data),
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "", "PYTHONPATH": "", "PACKFLOW_LOG_LEVEL": "ERROR"},
        )
    results = json.loads(done.stdout)
    version = subprocess.run(
        [
            str(BASELINE_PYTHON),
            "-c",
            "import importlib.metadata as m; print(m.version('packflow'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    ).stdout.strip()
    corpus = {
        "packflow_version": version,
        "generated_by": "scripts/preprocessor_corpus.py",
        "configs": data["configs"],
        "inputs": data["inputs"],
        "cases": [
            [config_id, batch_id, result]
            for (config_id, batch_id), result in zip(data["cases"], results, strict=True)
        ],
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(corpus, separators=(",", ":")) + "\n")
    errors = sum("error" in result for result in results)
    print(f"{len(results)} cases ({errors} raise in {version}) -> {OUTPUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()

"""SDK speed and memory: this project's packflow vs the published packflow==0.4.1.

Usage::

    .venv/bin/python bench/sdk_speed.py [--quick] [--rounds N] [--seconds S] [--before-tree DIR]

Creates (once) ``bench/.venv-packflow041`` with ``packflow==0.4.1`` from PyPI, then runs the
same workloads against both in subprocesses, alternating which goes first each round, and
prints one JSON document: median records/s per implementation and their ratio per workload
(with the lowest and highest ratio of a single round, and full garbage collections per 1,000
records), the load average at each round's start, plus tracemalloc peak bytes and net
allocated blocks for one call on 1,000 records. The JSON is also written to
``bench/results/sdk_speed.json``.

``--before-tree DIR`` adds a third implementation, ``packflow_before``: the ``packflow/``
package found in ``DIR`` (e.g. ``git archive main packflow | tar -x -C /tmp/before``), run
by this repo's venv with ``DIR`` first on ``PYTHONPATH``, so a change is measured before and
after, beside 0.4.1, in one run (ratios are then also given against it).

Workloads:
  identity_one_record   one-record call of an identity backend, no preprocessing options
  identity_one_record_verbose
                        the same with verbose=True: one log line per call, rendered (JSON
                        lines for this project, loguru's format for 0.4.1) into /dev/null
  records_features      1,000 nested records, feature_names (5 dotted paths) + rename_fields
  records_flatten       the same records, flatten_nested_inputs and 4 features
  numpy_features        numpy preprocessor with 8 nested features

It never asserts anything about time; read the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OURS_PYTHON = REPO / ".venv" / "bin" / "python"
BASELINE_VENV = HERE / ".venv-packflow041"
BASELINE_PYTHON = BASELINE_VENV / "bin" / "python"
BASELINE_REQUIREMENT = "packflow==0.4.1"

N_RECORDS = 1000
RENAME = {"metrics.b": "score"}
FEATURES_5 = ["user.age", "user.geo.lat", "device.os", "metrics.a", "score"]
FEATURES_4 = ["user.age", "user.geo.lat", "device.os", "metrics.a"]
FEATURES_8 = [
    "user.age",
    "user.geo.lat",
    "user.geo.lon",
    "metrics.a",
    "metrics.b",
    "metrics.c",
    "device.ram_gb",
    "payload.window.mean",
]


def make_record(i: int) -> dict[str, Any]:
    """A nested event record with ~20 leaves, lists included."""
    return {
        "id": f"evt-{i}",
        "ts": 1_700_000_000 + i,
        "user": {
            "id": i % 97,
            "age": 20 + i % 50,
            "geo": {"lat": 48.1 + i * 1e-4, "lon": 11.5 - i * 1e-4, "country": "DE"},
        },
        "device": {"os": "linux" if i % 2 else "android", "model": "x1", "ram_gb": 4 + i % 8},
        "metrics": {"a": i * 0.5, "b": i % 13, "c": 1.0 / (1 + i)},
        "payload": {"window": {"mean": 0.25 * i, "std": 1.5}, "values": [1, 2, 3, i]},
        "tags": ["alpha", "beta"],
    }


# -- child: runs inside one implementation's interpreter ---------------------------------------


def _logs_to_devnull() -> None:
    """Render every log line, as configured in production, into /dev/null.

    Call after importing packflow (0.4.1 installs its loguru stderr sink at import).
    """
    import logging

    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    logging.disable(logging.CRITICAL)
    try:
        import structlog

        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer(),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.PrintLoggerFactory(devnull),
        )
    except ImportError:  # baseline environment
        pass
    try:
        from loguru import logger

        logger.remove()
        logger.add(devnull, level="DEBUG")  # 0.4.1 logs verbose metrics at DEBUG
    except ImportError:
        pass


def _backends() -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    from packflow import InferenceBackend

    class Identity(InferenceBackend):  # type: ignore[misc]
        def execute(self, inputs: Any) -> Any:
            return inputs

    rows = [{} for _ in range(N_RECORDS)]

    class ArrayConsumer(InferenceBackend):  # type: ignore[misc]
        def execute(self, inputs: Any) -> Any:
            return rows

    records = [make_record(i) for i in range(N_RECORDS)]
    return {
        "identity_one_record": (Identity(), [make_record(0)]),
        "identity_one_record_verbose": (Identity(verbose=True), [make_record(0)]),
        "records_features": (
            Identity(feature_names=FEATURES_5, rename_fields=RENAME),
            records,
        ),
        "records_flatten": (
            Identity(flatten_nested_inputs=True, feature_names=FEATURES_4),
            records,
        ),
        "numpy_features": (ArrayConsumer(input_format="numpy", feature_names=FEATURES_8), records),
    }


def _full_collections() -> int:
    return int(gc.get_stats()[-1]["collections"])


def _rate(backend: Any, batch: list[dict[str, Any]], seconds: float) -> tuple[float, float]:
    """Records per second over at least ``seconds`` of back-to-back calls, and full garbage
    collections per 1,000 records in that time."""
    backend(batch)  # warm up
    full_before = _full_collections()
    calls = 0
    per_check = 1 if len(batch) > 1 else 2000
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for _ in range(per_check):
            backend(batch)
        calls += per_check
        now = time.perf_counter()
    done = calls * len(batch)
    return done / (now - start), (_full_collections() - full_before) * 1000 / done


def _memory(backend: Any, batch: list[dict[str, Any]]) -> dict[str, int]:
    """Peak traced bytes and net new blocks for one call (its result kept alive)."""
    backend(batch)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    tracemalloc.reset_peak()
    base_current, _ = tracemalloc.get_traced_memory()
    result = backend(batch)
    _, peak = tracemalloc.get_traced_memory()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(filters).compare_to(before.filter_traces(filters), "filename")
    net_blocks = sum(stat.count_diff for stat in diff)
    del result
    return {"peak_bytes": peak - base_current, "net_blocks": net_blocks}


def child_main(seconds: float) -> None:
    import packflow

    _logs_to_devnull()

    out: dict[str, Any] = {
        "version": getattr(packflow, "__version__", "?"),
        "rates": {},
        "full_collections": {},
    }
    cases = _backends()
    for name, (backend, batch) in cases.items():
        out["rates"][name], out["full_collections"][name] = _rate(backend, batch, seconds)
    identity = cases["identity_one_record"][0]
    records = cases["records_features"][1]
    out["memory"] = {
        "identity_1000": _memory(identity, records),
        "records_features_1000": _memory(cases["records_features"][0], records),
        "records_flatten_1000": _memory(cases["records_flatten"][0], records),
    }
    json.dump(out, sys.stdout)


# -- parent --------------------------------------------------------------------------------------


def ensure_baseline() -> None:
    if BASELINE_PYTHON.exists():
        probe = subprocess.run(
            [str(BASELINE_PYTHON), "-c", "import packflow"],
            capture_output=True,
            check=False,
            cwd=tempfile.gettempdir(),
        )
        if probe.returncode == 0:
            return
    print(f"creating {BASELINE_VENV} with {BASELINE_REQUIREMENT}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(BASELINE_VENV)], check=True)
    subprocess.run(
        [str(BASELINE_PYTHON), "-m", "pip", "install", "-q", BASELINE_REQUIREMENT], check=True
    )


def run_child(python: Path, seconds: float, pythonpath: str = "") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cwd:  # keep the repo's packflow/ off sys.path
        done = subprocess.run(
            [str(python), str(Path(__file__).resolve()), "--child", "--seconds", str(seconds)],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": pythonpath},
        )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child {python} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 0.25 s per workload")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument(
        "--before-tree",
        type=Path,
        default=None,
        help="a folder holding an earlier packflow/ package, measured as packflow_before",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (0.25 if args.quick else 1.0)
    if args.child:
        child_main(seconds)
        return
    rounds = args.rounds or (3 if args.quick else 7)
    ensure_baseline()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    impls: dict[str, tuple[Path, str]] = {
        "packflow": (OURS_PYTHON, ""),
        "packflow_0_4_1": (BASELINE_PYTHON, ""),
    }
    if args.before_tree is not None:
        impls["packflow_before"] = (OURS_PYTHON, str(args.before_tree.resolve()))
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in impls}
    order = list(impls)
    load_per_round = []
    for round_no in range(rounds):
        print(f"round {round_no + 1}/{rounds}", file=sys.stderr)
        load_per_round.append(round(os.getloadavg()[0], 2))
        for name in order:
            python, pythonpath = impls[name]
            samples[name].append(run_child(python, seconds, pythonpath))
        order.reverse()
    report: dict[str, Any] = {
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "load_average_1min_per_round": load_per_round,
        "rounds": rounds,
        "seconds_per_workload": seconds,
        "versions": {name: samples[name][0]["version"] for name in impls},
        "workloads": {},
        "memory_one_call_1000_records": {name: samples[name][0]["memory"] for name in impls},
    }
    for workload in samples["packflow"][0]["rates"]:
        medians = {
            name: statistics.median(s["rates"][workload] for s in samples[name]) for name in impls
        }
        per_round = [
            ours["rates"][workload] / base["rates"][workload]
            for ours, base in zip(samples["packflow"], samples["packflow_0_4_1"], strict=True)
        ]
        report["workloads"][workload] = {
            "records_per_s": {name: round(value) for name, value in medians.items()},
            "ratio": round(medians["packflow"] / medians["packflow_0_4_1"], 2),
            "ratio_min_max_over_rounds": [round(min(per_round), 2), round(max(per_round), 2)],
            "full_collections_per_1000_records": {
                name: round(
                    statistics.median(s["full_collections"][workload] for s in samples[name]), 3
                )
                for name in impls
            },
        }
        if "packflow_before" in medians:
            report["workloads"][workload]["ratio_before_vs_0_4_1"] = round(
                medians["packflow_before"] / medians["packflow_0_4_1"], 2
            )
    text = json.dumps(report, indent=2)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "sdk_speed.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

"""The bench's workloads: the worker's backend, the pipes' batch function, the inputs.

=========  ==========================================  =====================================
name       worker backend                              input records
=========  ==========================================  =====================================
identity   ``bench/identity_backend.py``               ``_records.make_record``
numpy      the example ``examples/anomaly_scorer``     ``_records.make_reading`` (readings)
busy20us   ``bench/busy_backend.py`` (~20 us/record)   ``_records.make_record``
=========  ==========================================  =====================================

In every workload the reference pipes do the worker's job: they run the same SDK backend
object the worker runs (``backend(records)`` on each fetched batch; Quix Streams, which has
no batch step, once per record), decoding and encoding JSON with orjson, so each pipe pays
what the worker pays for the JSON and the backend. The batched pipes' ``--forward-bytes``
(the ``forward`` phase) skips all of it and forwards each value untouched: the transport's
ceiling, a pipe that does less than the job. Stdlib only at import: the pipes import this
module in their own venvs.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _records import make_reading, make_record

BENCH = Path(__file__).resolve().parent
EXAMPLE = BENCH.parent / "examples" / "anomaly_scorer"

#: A loaded backend as the pipes call it: records in, records out.
BatchFunction = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Workload:
    """One workload: the backend (a bench module, or the example project) and its inputs."""

    name: str
    make: Callable[[int, int], bytes]
    backend_module: str | None = None
    """A module in bench/ with a ``Backend`` class; ``None`` is the example project."""

    @property
    def worker_args(self) -> tuple[str, ...]:
        """How ``packflow-worker`` (run in bench/) loads this workload's backend."""
        if self.backend_module is None:
            return ("--project", str(EXAMPLE))
        return ("--backend", f"{self.backend_module}:Backend", "--loader", "local")

    def sdk_backend(self) -> BatchFunction:
        """The backend object the worker runs for this workload, loaded in this process."""
        if self.backend_module is None:
            from packflow.loaders import InferenceBackendLoader

            backend: BatchFunction = InferenceBackendLoader.from_project(EXAMPLE)
            return backend
        if str(BENCH) not in sys.path:
            sys.path.insert(0, str(BENCH))
        module = importlib.import_module(self.backend_module)
        return module.Backend()  # type: ignore[no-any-return]

    def pipe_backend(self, *, forward_bytes: bool = False) -> BatchFunction | None:
        """What the reference pipes run: the worker's backend, or nothing with
        ``forward_bytes`` (values forwarded untouched)."""
        return None if forward_bytes else self.sdk_backend()


WORKLOADS: dict[str, Workload] = {
    "identity": Workload("identity", make_record, "identity_backend"),
    "numpy": Workload("numpy", make_reading),
    "busy20us": Workload("busy20us", make_record, "busy_backend"),
}


def backend_cost(
    workload: Workload, values: list[bytes], batch_size: int, repeats: int = 3
) -> dict[str, Any]:
    """The backend's own CPU per record, timed in this process on decoded ``values``.

    Calls ``backend(batch)`` on consecutive batches of ``batch_size`` records, as the
    worker does (SDK call, preprocessing and ``execute``; decoding excluded), and keeps the
    fastest of ``repeats`` passes. Identity's cost is measured the same way.
    """
    import orjson

    backend = workload.sdk_backend()
    best_ns = float("inf")
    for _ in range(repeats):
        batches = [
            [orjson.loads(v) for v in values[i : i + batch_size]]
            for i in range(0, len(values), batch_size)
        ]
        t0 = time.thread_time_ns()
        for batch in batches:
            backend(batch)
        best_ns = min(best_ns, time.thread_time_ns() - t0)
    return {"records": len(values), "cpu_us_per_record": round(best_ns / len(values) / 1e3, 2)}


def apply_batch(backend: BatchFunction | None, values: list[bytes]) -> list[bytes]:
    """The pipes' per-batch step: decode, run the backend on the batch and encode its
    outputs (one per input); ``values`` unchanged without a backend (``--forward-bytes``)."""
    if backend is None:
        return values
    import orjson

    outputs = backend([orjson.loads(v) for v in values])
    return [orjson.dumps(o) for o in outputs]

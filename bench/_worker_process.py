"""``packflow-worker`` as the benchmarks run it: a subprocess through its CLI, and its events.

Not a public module: the worker benchmarks import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _child import Child
from _cpu import process_cpu_seconds

BENCH = Path(__file__).resolve().parent
IDENTITY_BACKEND = ("--backend", "identity_backend:Backend", "--loader", "local")


@dataclass
class WorkerRun:
    """A ``packflow-worker`` subprocess, by default on the bench's identity backend.

    ``backend_args`` name the backend as the CLI takes it (``--backend``/``--loader`` or
    ``--project``); it runs in bench/, so the bench's backend modules are importable.
    ``source``, when given, is another packflow source tree (a ``git worktree`` of an
    earlier commit, say) whose ``worker`` and ``packflow`` packages run instead of this one's:
    it goes first on ``PYTHONPATH``.
    """

    bootstrap: str
    input_topic: str
    output_topic: str
    dlq_topic: str
    group_id: str
    log_path: Path
    extra_args: list[str] = field(default_factory=list)
    backend_args: tuple[str, ...] = IDENTITY_BACKEND
    source: Path | None = None
    child: Child | None = None

    def command(self) -> list[str]:
        """The worker's command line (``--health-port 0``)."""
        script = Path(sys.executable).parent / "packflow-worker"
        base = [str(script)] if script.exists() else [sys.executable, "-m", "worker"]
        return [*base, *self.backend_args, "--health-port", "0", *self.extra_args]

    def environment(self) -> dict[str, str]:
        """This process's environment without its ``PACKFLOW_*`` settings, plus the run's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PACKFLOW_")}
        env.update(
            PACKFLOW_BOOTSTRAP_SERVERS=self.bootstrap,
            PACKFLOW_INPUT_TOPIC=self.input_topic,
            PACKFLOW_OUTPUT_TOPIC=self.output_topic,
            PACKFLOW_DLQ_TOPIC=self.dlq_topic,
            PACKFLOW_GROUP_ID=self.group_id,
            PACKFLOW_LOG_LEVEL="INFO",  # batch_metrics events are INFO
        )
        if self.source is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                [str(self.source), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        return env

    def start(self) -> Child:
        """Start the worker; its stdout and stderr go to ``log_path``."""
        self.child = Child(
            self.command(), cwd=BENCH, env=self.environment(), log_path=self.log_path
        )
        return self.child

    @property
    def pid(self) -> int:
        """The worker's process id."""
        assert self.child is not None
        return self.child.pid

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the worker has used so far (from /proc/<pid>/stat)."""
        return process_cpu_seconds(self.pid) or 0.0

    def alive(self) -> bool:
        """Tell whether the worker process is still running."""
        return self.child is not None and self.child.alive()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM the worker and return its exit code (SIGKILL after ``timeout``)."""
        assert self.child is not None
        return self.child.stop(timeout)

    def batch_metrics(self) -> list[dict[str, Any]]:
        """The ``batch_metrics`` events the worker logged."""
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"batch_metrics"' not in line:
                continue
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the worker's log, for error messages."""
        return "" if self.child is None else self.child.log_tail(lines)


def summarise_batches(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean batch size, mean per-step milliseconds, and the backend's steps per record.

    ``backend_us_per_record`` is the sum of the pipeline steps' milliseconds (preprocess,
    execute, ...) over every batch divided by the records in them: wall time in the
    executor thread, so it includes waiting for the GIL.
    """
    if not events:
        return {"batches": 0}
    steps: dict[str, list[float]] = {}
    for e in events:
        for name, ms in (e.get("steps_ms") or {}).items():
            if isinstance(ms, int | float):
                steps.setdefault(name, []).append(float(ms))
    records = sum(int(e.get("batch_size", 0)) for e in events)
    steps_total = sum(sum(v) for v in steps.values())
    return {
        "batches": len(events),
        "mean_batch_size": round(float(np.mean([e.get("batch_size", 0) for e in events])), 1),
        "dead_letters": int(sum(e.get("dead_letters", 0) for e in events)),
        "mean_steps_ms": {k: round(float(np.mean(v)), 3) for k, v in steps.items()},
        "backend_us_per_record": round(steps_total * 1000.0 / records, 2) if records else None,
    }

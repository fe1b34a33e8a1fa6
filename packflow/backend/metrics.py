"""Execution metrics of one backend call: batch size and milliseconds per pipeline step."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator

__all__ = ["ExecutionMetrics", "ExecutionTimes"]

STEP_NAMES = ("preprocess", "transform_inputs", "execute", "transform_outputs")

# One call's (batch_size, preprocess, transform_inputs, execute, transform_outputs); times in
# ns, None for a step that did not run.
CallTimes = tuple[int | None, int | None, int | None, int | None, int | None]
NO_CALL: CallTimes = (None, None, None, None, None)
STEP_SLOTS = {name: slot for slot, name in enumerate(STEP_NAMES, start=1)}  # index in CallTimes


class ExecutionTimes(BaseModel):
    """Milliseconds spent in each pipeline step; optional steps are ``None`` when not defined."""

    preprocess: float
    transform_inputs: float | None = None
    execute: float
    transform_outputs: float | None = None

    def total(self) -> float:
        """Sum of the times of the steps that ran."""
        return float(sum(getattr(self, name) or 0.0 for name in STEP_NAMES))


class ExecutionMetrics(BaseModel):
    """Metrics of one call: ``batch_size``, ``execution_times`` (ms) and their total (ms)."""

    batch_size: int
    execution_times: ExecutionTimes
    total_execution_time: float | None = None

    @model_validator(mode="after")
    def _compute_total(self) -> ExecutionMetrics:
        self.total_execution_time = self.execution_times.total()
        return self


def _build_metrics(batch_size: int, times_ms: dict[str, Any]) -> ExecutionMetrics:
    """Build an ``ExecutionMetrics`` from trusted values (``times_ms``: step name -> ms).

    Skips validation; steps missing from ``times_ms`` did not run.
    """
    times = ExecutionTimes.model_construct(**times_ms)
    return ExecutionMetrics.model_construct(
        batch_size=batch_size,
        execution_times=times,
        total_execution_time=times.total(),
    )


def _execution_times_ms(times: CallTimes) -> dict[str, float]:
    """Milliseconds per step that ran."""
    return {
        name: ns / 1e6 for name, ns in zip(STEP_NAMES, times[1:], strict=True) if ns is not None
    }


def _metrics_dict(times: CallTimes) -> dict[str, Any]:
    """``times`` as 0.4.x's metrics dict: ``batch_size`` (once known), ``execution_times``."""
    metrics: dict[str, Any] = {"execution_times": _execution_times_ms(times)}
    if times[0] is not None:
        metrics["batch_size"] = times[0]
    return metrics

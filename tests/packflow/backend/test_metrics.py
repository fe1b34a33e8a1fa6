"""ExecutionMetrics / ExecutionTimes: totals over the steps that ran."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from packflow.backend.metrics import ExecutionMetrics, ExecutionTimes


def test_total_sums_the_steps_that_ran() -> None:
    times = ExecutionTimes(preprocess=1.0, execute=2.5)
    assert times.total() == 3.5
    assert (
        ExecutionTimes(preprocess=1, execute=2, transform_inputs=3, transform_outputs=4).total()
        == 10
    )


def test_metrics_compute_total_execution_time() -> None:
    metrics = ExecutionMetrics(
        batch_size=4, execution_times={"preprocess": 0.5, "execute": 1.5, "transform_outputs": 1}
    )
    assert metrics.total_execution_time == 3.0
    assert metrics.model_dump()["execution_times"]["transform_inputs"] is None


def test_preprocess_and_execute_are_required() -> None:
    with pytest.raises(ValidationError, match="execute"):
        ExecutionMetrics(batch_size=1, execution_times={"preprocess": 1.0})

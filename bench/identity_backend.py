"""The benchmarks' backend: returns its input records unchanged (measures the runtime)."""

from typing import Any

from packflow import InferenceBackend


class Backend(InferenceBackend):
    """Identity: one output record per input record, the same record."""

    def execute(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return ``inputs`` as they are."""
        return inputs

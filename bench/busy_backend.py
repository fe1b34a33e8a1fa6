"""The ``busy20us`` benchmark backend: about 20 us of pure-Python work per record."""

from typing import Any

from _busy import busy

from packflow import InferenceBackend


class Backend(InferenceBackend):
    """One output per input: the input record with the result of its busy loop added."""

    def execute(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run the calibrated loop once per record (``bench/_busy.py``)."""
        return [busy(record) for record in inputs]

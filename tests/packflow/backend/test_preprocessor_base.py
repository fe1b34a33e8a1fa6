"""The preprocessor base: the passthrough and how failures are wrapped."""

from __future__ import annotations

from typing import Any

import pytest

from packflow.backend.configuration import BackendConfig
from packflow.backend.preprocessors import PassthroughPreprocessor
from packflow.exceptions import PreprocessorRuntimeError


def test_passthrough_returns_its_input_itself() -> None:
    data = [{"a": 1}, "anything"]
    assert PassthroughPreprocessor(BackendConfig())(data) is data  # type: ignore[arg-type]


def test_call_wraps_unexpected_errors_as_preprocessor_runtime_error() -> None:
    class Exploding(PassthroughPreprocessor):
        def process(self, raw_inputs: Any) -> Any:
            raise KeyError("k")

    with pytest.raises(PreprocessorRuntimeError, match="Failed to preprocess inputs") as info:
        Exploding(BackendConfig())([{}])
    assert isinstance(info.value.__cause__, KeyError)

"""get_preprocessor: the input format picks the preprocessor (packflow.backend.preprocessors)."""

from __future__ import annotations

import pytest

from packflow.backend.configuration import BackendConfig
from packflow.backend.preprocessors import (
    NumpyPreprocessor,
    PassthroughPreprocessor,
    Preprocessor,
    RecordsPreprocessor,
    get_preprocessor,
)
from packflow.testing import capture_logs


@pytest.mark.parametrize(
    ("fmt", "cls"),
    [("records", RecordsPreprocessor), ("passthrough", PassthroughPreprocessor)],
)
def test_get_preprocessor_picks_the_input_format(fmt: str, cls: type[Preprocessor]) -> None:
    assert type(get_preprocessor(BackendConfig(input_format=fmt))) is cls  # type: ignore[arg-type]


def test_get_preprocessor_numpy() -> None:
    config = BackendConfig(input_format="numpy", feature_names=["a"])  # type: ignore[arg-type]
    assert type(get_preprocessor(config)) is NumpyPreprocessor


def test_a_config_subclass_declaring_input_format_as_a_string_is_honoured() -> None:
    class NumpyConfig(BackendConfig):
        input_format: str = "numpy"  # type: ignore[assignment]
        feature_names: list[str] = ["a"]

    pp = get_preprocessor(NumpyConfig())
    assert isinstance(pp, NumpyPreprocessor)
    assert pp([{"a": 1}]).tolist() == [[1]]


def test_an_input_format_naming_no_preprocessor_passes_through_with_a_warning() -> None:
    class Loose(BackendConfig):
        input_format: str = "tensor"  # type: ignore[assignment]

    with capture_logs() as logs:
        pp = get_preprocessor(Loose())
    assert isinstance(pp, PassthroughPreprocessor)
    assert [e["event"] for e in logs] == ["input_format_unknown"]

"""ensure_native_types / ensure_valid_output and the per-library type handlers."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from packflow.utils import ensure_native_types, ensure_valid_output
from packflow.utils.normalize.base import TypeConversionHandler
from packflow.utils.normalize.handlers import (
    NumpyTypeHandler,
    PandasDataFrameHandler,
    PandasSeriesHandler,
    PillowImageHandler,
    TorchScalarHandler,
    TorchTensorHandler,
)


@pytest.mark.parametrize("value", [1, 1.5, "s", True, None, np.float64(2.5)])
def test_native_scalars_pass_unchanged(value: Any) -> None:
    assert ensure_native_types(value) is value


def test_numpy_values_become_python_values() -> None:
    out = ensure_native_types({"a": np.arange(3), "b": np.int64(4), "c": np.float32(0.5)})
    assert out == {"a": [0, 1, 2], "b": 4, "c": 0.5}
    assert type(out["b"]) is int
    assert type(out["c"]) is float


def test_pandas_series_and_dataframe() -> None:
    assert ensure_native_types(pd.Series([1, 2])) == [1, 2]
    frame = pd.DataFrame({"x": [1, 2]})
    assert ensure_native_types(frame) == {"index": [0, 1], "columns": ["x"], "data": [[1], [2]]}


def test_pil_image_becomes_base64_png() -> None:
    image = Image.new("RGB", (2, 2), color=(255, 0, 0))
    encoded = ensure_native_types(image)
    decoded = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert decoded.format == "PNG"
    assert decoded.getpixel((0, 0)) == (255, 0, 0)


def test_containers_are_converted_recursively() -> None:
    out = ensure_native_types({"t": (1, np.int8(2)), "s": {3}, "l": [[np.bool_(True)]]})
    assert out == {"t": [1, 2], "s": [3], "l": [[True]]}


def test_unsupported_type_is_a_type_error_naming_it() -> None:
    class Opaque:
        pass

    with pytest.raises(TypeError, match=r"Opaque.*is not supported"):
        ensure_native_types({"x": Opaque()})


def test_ensure_valid_output_wraps_non_dicts_and_unwraps_single_lists() -> None:
    outputs = [np.array([0.25]), {"score": np.float32(0.5)}, [1, 2], 3]
    assert ensure_valid_output(outputs) == [
        {"output": 0.25},
        {"score": 0.5},
        {"output": [1, 2]},
        {"output": 3},
    ]
    assert ensure_valid_output([1], parent_key="label") == [{"label": 1}]


@pytest.mark.parametrize(
    "handler",
    [NumpyTypeHandler(), PandasSeriesHandler(), PandasDataFrameHandler(), PillowImageHandler()],
)
def test_handlers_for_installed_libraries_are_available(handler: TypeConversionHandler) -> None:
    assert handler.available() is True
    assert handler.module is not None


@pytest.mark.parametrize("handler", [TorchScalarHandler(), TorchTensorHandler()])
def test_torch_handlers_report_unavailable_without_torch(handler: TypeConversionHandler) -> None:
    # torch is deliberately not installed in the test environment.
    assert "torch" not in sys.modules
    assert handler.available() is False
    assert handler.module is None
    assert handler.is_type(object()) is False


def test_a_handler_whose_library_is_missing_is_unavailable() -> None:
    class Missing(TypeConversionHandler):
        @property
        def package_name(self) -> str:
            return "packflow_no_such_library"

        def is_type(self, obj: Any) -> bool:
            return True

        def convert(self, obj: Any) -> Any:
            return obj

    handler = Missing()
    assert handler.available() is False
    assert handler.loaded_module() is None


def test_importing_packflow_does_not_import_optional_libraries() -> None:
    code = (
        "import sys, packflow, packflow.utils; "
        "from packflow.utils import ensure_native_types; ensure_native_types({'a': [1]}); "
        "print(sorted(m for m in ('pandas', 'PIL', 'torch') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"

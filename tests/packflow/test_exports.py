"""The SDK's public module map (DESIGN.md): paths and names users' code imports."""

from __future__ import annotations

import importlib
from importlib.metadata import version
from types import ModuleType

import pytest

import packflow

PUBLIC_MODULE_MAP = {
    "packflow": [
        "InferenceBackend",
        "BackendConfig",
        "PackflowProject",
        "RunResult",
        "__version__",
    ],
    "packflow.backend": [
        "InferenceBackend",
        "BackendConfig",
        "ExecutionMetrics",
        "RunResult",
        "base",
        "configuration",
        "preprocessors",
        "metrics",
        "validation",
    ],
    "packflow.backend.base": ["InferenceBackend", "RunResult"],
    "packflow.backend.configuration": [
        "BackendConfig",
        "InputFormats",
        "load_backend_configuration",
        "_load_overrides_from_env",
        "_resolve_configs",
    ],
    "packflow.backend.metrics": ["ExecutionMetrics", "ExecutionTimes"],
    "packflow.backend.preprocessors": [
        "get_preprocessor",
        "Preprocessor",
        "PassthroughPreprocessor",
        "RecordsPreprocessor",
        "NumpyPreprocessor",
    ],
    "packflow.backend.validation": [
        "InferenceBackendValidator",
        "_input_is_correct_format",
        "_inputs_and_outputs_match_len",
        "_output_is_list_of_dicts",
        "_output_is_json_serializable",
    ],
    "packflow.utils": [
        "check_delimiter_collisions",
        "flatten_dict",
        "flatten_records",
        "get_nested_field",
        "get_nested_field_direct",
        "set_nested_field_direct",
        "records_to_ndarray",
        "ensure_native_types",
        "ensure_valid_output",
        "data",
        "normalize",
    ],
    "packflow.utils.data": [
        "check_delimiter_collisions",
        "flatten_dict",
        "flatten_records",
        "get_nested_field",
        "get_nested_field_direct",
        "set_nested_field_direct",
        "records_to_ndarray",
    ],
    "packflow.utils.normalize": ["ensure_native_types", "ensure_valid_output"],
    "packflow.utils.normalize.base": ["TypeConversionHandler"],
    "packflow.utils.normalize.handlers": [
        "NumpyTypeHandler",
        "PandasSeriesHandler",
        "PandasDataFrameHandler",
        "TorchScalarHandler",
        "TorchTensorHandler",
        "PillowImageHandler",
    ],
    "packflow.utils.normalize.normalize": ["ensure_native_types", "ensure_valid_output"],
    "packflow.exceptions": [
        "PackflowError",
        "InferenceBackendInitializationError",
        "InferenceBackendRuntimeError",
        "InferenceBackendValidationError",
        "InferenceBackendLoadError",
        "PreprocessorInitError",
        "PreprocessorRuntimeError",
        "RetryableError",
        "UnknownPreprocessorError",
    ],
    "packflow.testing": [
        "METRIC_EVENTS",
        "MetricEvents",
        "capture_logs",
        "capture_metric_events",
        "make_records",
    ],
    "packflow.logger": ["LOG_LEVEL_ENV_VAR_NAME", "get_logger", "level_from_env", "logger"],
    "packflow.constants": [
        "BACKEND_CONFIG_PATH_ENV_VAR_NAME",
        "PACKAGING_CONFIG_NAME",
        "REQUIREMENTS_TEXT_NAME",
    ],
}


@pytest.mark.parametrize(("module_name", "names"), PUBLIC_MODULE_MAP.items())
def test_module_exports_its_public_names(module_name: str, names: list[str]) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize(
    "module_name",
    [
        "packflow",
        "packflow.backend",
        "packflow.utils",
        "packflow.utils.normalize",
        "packflow.exceptions",
        "packflow.testing",
    ],
)
def test_package_all_is_sorted_and_resolvable(module_name: str) -> None:
    module: ModuleType = importlib.import_module(module_name)
    names = module.__all__
    assert names == sorted(names)
    assert [name for name in names if not hasattr(module, name)] == []
    public = [n for n in PUBLIC_MODULE_MAP.get(module_name, []) if not n.startswith("_")]
    assert set(public) - {"__version__"} <= set(names)


def test_packflow_and_backend_export_the_same_objects() -> None:
    import packflow.backend as backend

    assert packflow.InferenceBackend is backend.InferenceBackend
    assert packflow.BackendConfig is backend.BackendConfig
    assert packflow.RunResult is backend.RunResult


def test_constants_values() -> None:
    from packflow import constants

    assert constants.BACKEND_CONFIG_PATH_ENV_VAR_NAME == "BACKEND_CONFIG_FILE_PATH"
    assert constants.PACKAGING_CONFIG_NAME == "packflow.yaml"
    assert constants.REQUIREMENTS_TEXT_NAME == "requirements.txt"


def test_version_is_the_distribution_version() -> None:
    assert packflow.__version__ == version("packflow")


def test_every_exception_is_a_packflow_error() -> None:
    from packflow import exceptions

    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.PackflowError)

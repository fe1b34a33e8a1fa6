import importlib

import pytest

import packflow
import packflow.loaders


def test_loaders_all_is_sorted_and_complete() -> None:
    names = packflow.loaders.__all__
    assert names == sorted(names)
    for name in ("InferenceBackendLoader", "LocalLoader", "ModuleLoader", "PackflowConfig"):
        assert name in names
        assert getattr(packflow.loaders, name).__name__ == name


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("packflow.loaders.base", ["InferenceBackendLoader"]),
        ("packflow.loaders.config", ["PackflowConfig", "NAME_PATTERN", "validate_for_export"]),
        ("packflow.loaders.config", ["check_python_version", "load_packflow_config"]),
        ("packflow.loaders.local", ["LocalLoader"]),
        ("packflow.loaders.module", ["ModuleLoader"]),
        ("packflow.loaders.utils", ["inference_backend_parts"]),
        ("packflow.project", ["PackflowProject"]),
        ("packflow.cli", ["cli"]),
    ],
)
def test_public_module_map(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert hasattr(imported, name), f"{module}.{name}"


def test_packflow_exports_packflow_project() -> None:
    assert "PackflowProject" in packflow.__all__
    assert packflow.PackflowProject.__module__ == "packflow.project"

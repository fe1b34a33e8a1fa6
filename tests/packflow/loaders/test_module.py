from pathlib import Path

import pytest

from packflow import InferenceBackend
from packflow.exceptions import InferenceBackendLoadError
from packflow.loaders import ModuleLoader

from .conftest import CONFIGURED_BACKEND, IDENTITY_BACKEND, ProjectFactory


@pytest.fixture
def package_root(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path holding the package ``pf_test_models``."""
    root = make_project(
        "site",
        files={
            "pf_test_models/__init__.py": "",
            "pf_test_models/scorer.py": CONFIGURED_BACKEND + "\nscorer = Backend(label='inst')\n",
            "pf_test_models/broken.py": "import pf_test_missing_dependency\n",
            "pf_test_models/plain.py": "class Plain:\n    pass\n" + IDENTITY_BACKEND,
        },
    )
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.mark.usefixtures("package_root")
def test_loads_class_from_installed_module_with_kwargs() -> None:
    backend = ModuleLoader("pf_test_models.scorer:Backend").load(label="kw")
    assert isinstance(backend, InferenceBackend)
    assert backend({"x": 1}) == {"threshold": 0.5, "label": "kw"}


@pytest.mark.usefixtures("package_root")
def test_loads_instance_as_is() -> None:
    backend = ModuleLoader("pf_test_models.scorer:scorer").load()
    assert backend({"x": 1})["label"] == "inst"


@pytest.mark.usefixtures("package_root")
def test_missing_attribute_is_a_load_error_naming_it() -> None:
    with pytest.raises(InferenceBackendLoadError, match='"Nope" does not exist in loaded module'):
        ModuleLoader("pf_test_models.scorer:Nope").load()


@pytest.mark.usefixtures("package_root")
@pytest.mark.parametrize("module", ["pf_test_absent_package", "pf_test_models.absent"])
def test_missing_module_is_a_load_error_naming_it(module: str) -> None:
    with pytest.raises(InferenceBackendLoadError, match=f'Could not import module "{module}"'):
        ModuleLoader(f"{module}:Backend").load()


@pytest.mark.usefixtures("package_root")
def test_import_error_inside_the_module_is_not_masked() -> None:
    with pytest.raises(InferenceBackendLoadError) as caught:
        ModuleLoader("pf_test_models.broken:Backend").load()
    assert "No module named 'pf_test_missing_dependency'" in str(caught.value)
    assert "Could not import module" not in str(caught.value)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


@pytest.mark.usefixtures("package_root")
def test_non_backend_class_is_rejected() -> None:
    with pytest.raises(InferenceBackendLoadError, match=r"the class pf_test_models\.plain\.Plain"):
        ModuleLoader("pf_test_models.plain:Plain").load()


def test_malformed_reference_is_a_load_error() -> None:
    with pytest.raises(InferenceBackendLoadError, match="must be in format"):
        ModuleLoader("no_colon_here").load()

import sys
from pathlib import Path

import pytest

from packflow import InferenceBackend
from packflow.exceptions import InferenceBackendInitializationError, InferenceBackendLoadError
from packflow.loaders import LocalLoader

from .conftest import CONFIGURED_BACKEND, IDENTITY_BACKEND, ProjectFactory


def test_loads_class_from_current_directory(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(make_project(files={"inference.py": IDENTITY_BACKEND}))
    backend = LocalLoader("inference:Backend").load()
    assert isinstance(backend, InferenceBackend)
    assert backend([{"a": 1}]) == [{"a": 1}]


def test_class_is_instantiated_with_keyword_arguments(make_project: ProjectFactory) -> None:
    project = make_project(files={"inference.py": CONFIGURED_BACKEND})
    backend = LocalLoader("inference:Backend", base_dir=project).load(threshold=0.9)
    assert backend({"x": 1}) == {"threshold": 0.9, "label": "default"}


def test_base_dir_loads_relative_to_the_project_not_the_cwd(
    make_project: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(files={"inference.py": IDENTITY_BACKEND})
    monkeypatch.chdir(tmp_path)
    loader = LocalLoader("inference:Backend", base_dir=project)
    assert loader.base_dir == project.resolve()
    assert isinstance(loader.load(), InferenceBackend)


def test_dotted_module_path_maps_to_sub_folders(make_project: ProjectFactory) -> None:
    project = make_project(files={"models/scoring/backend.py": IDENTITY_BACKEND})
    backend = LocalLoader("models.scoring.backend:Backend", base_dir=project).load()
    assert type(backend).__name__ == "Backend"
    expected = str(project / "models" / "scoring" / "backend.py")
    assert LocalLoader._dot_notation_to_pypath("models.scoring.backend", project) == expected


def test_instance_is_returned_as_is(make_project: ProjectFactory) -> None:
    source = IDENTITY_BACKEND + "\nbackend = Backend()\n"
    project = make_project(files={"inference.py": source})
    backend = LocalLoader("inference:backend", base_dir=project).load()
    assert type(backend).__name__ == "Backend"


def test_instance_with_keyword_arguments_warns_they_are_ignored(
    make_project: ProjectFactory, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(files={"inference.py": IDENTITY_BACKEND + "\nbackend = Backend()\n"})
    LocalLoader("inference:backend", base_dir=project).load(verbose=True)
    assert "keyword arguments ['verbose'] are ignored" in caplog.text


def test_two_projects_with_the_same_module_name_load_their_own(
    make_project: ProjectFactory,
) -> None:
    first = make_project("first", files={"inference.py": IDENTITY_BACKEND + "\nWHO = 'first'\n"})
    second = make_project("second", files={"inference.py": IDENTITY_BACKEND + "\nWHO = 'sec'\n"})
    a = LocalLoader("inference:Backend", base_dir=first).load()
    b = LocalLoader("inference:Backend", base_dir=second).load()
    assert sys.modules[type(a).__module__].WHO == "first"
    assert sys.modules[type(b).__module__].WHO == "sec"
    assert type(a).__module__ != type(b).__module__
    assert "inference" not in sys.modules


def test_relative_imports_resolve_inside_the_project(make_project: ProjectFactory) -> None:
    def backend(tag: str) -> dict[str, str]:
        return {
            "helpers.py": f"TAG = {tag!r}\n",
            "inference.py": IDENTITY_BACKEND + "\nfrom .helpers import TAG\n",
        }

    first = make_project("first", files=backend("one"))
    second = make_project("second", files=backend("two"))
    a = LocalLoader("inference:Backend", base_dir=first).load()
    b = LocalLoader("inference:Backend", base_dir=second).load()
    assert sys.modules[type(a).__module__].TAG == "one"
    assert sys.modules[type(b).__module__].TAG == "two"


def test_absolute_imports_of_sibling_files_work(make_project: ProjectFactory) -> None:
    files = {
        "pf_test_sibling_helpers.py": "def double(x):\n    return 2 * x\n",
        "inference.py": """
            from packflow import InferenceBackend
            from pf_test_sibling_helpers import double


            class Backend(InferenceBackend):
                def execute(self, inputs):
                    return [{"y": double(r["x"])} for r in inputs]
            """,
    }
    backend = LocalLoader("inference:Backend", base_dir=make_project(files=files)).load()
    assert backend({"x": 2}) == {"y": 4}


def test_module_file_runs_afresh_on_each_load(make_project: ProjectFactory) -> None:
    project = make_project(files={"inference.py": IDENTITY_BACKEND + "\nVERSION = 1\n"})
    loader = LocalLoader("inference:Backend", base_dir=project)
    first = loader.load()
    (project / "inference.py").write_text(IDENTITY_BACKEND + "\nVERSION = 2\n")
    second = loader.load()
    assert sys.modules[type(second).__module__].VERSION == 2
    assert type(first) is not type(second)


def test_missing_module_file_names_the_file(make_project: ProjectFactory) -> None:
    project = make_project()
    with pytest.raises(InferenceBackendLoadError) as caught:
        LocalLoader("models.scorer:Backend", base_dir=project).load()
    message = str(caught.value)
    assert "models/scorer.py" in message
    assert str(project) in message
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_missing_attribute_names_the_attribute_and_the_file(
    make_project: ProjectFactory,
) -> None:
    project = make_project(files={"inference.py": IDENTITY_BACKEND})
    with pytest.raises(InferenceBackendLoadError, match='Attribute "Nope" not found') as caught:
        LocalLoader("inference:Nope", base_dir=project).load()
    assert str(project / "inference.py") in str(caught.value)


def test_malformed_reference_is_a_load_error_quoting_it(make_project: ProjectFactory) -> None:
    project = make_project(files={"inference.py": IDENTITY_BACKEND})
    with pytest.raises(InferenceBackendLoadError, match=r'"inference\.Backend" must be in format'):
        LocalLoader("inference.Backend", base_dir=project).load()


def test_import_error_inside_user_module_is_not_masked(make_project: ProjectFactory) -> None:
    source = "import pf_test_package_that_does_not_exist\n" + IDENTITY_BACKEND
    project = make_project(files={"inference.py": source})
    with pytest.raises(InferenceBackendLoadError) as caught:
        LocalLoader("inference:Backend", base_dir=project).load()
    message = str(caught.value)
    assert "ModuleNotFoundError" in message
    assert "pf_test_package_that_does_not_exist" in message
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert caught.value.__cause__.name == "pf_test_package_that_does_not_exist"


def test_syntax_error_names_file_and_line(make_project: ProjectFactory) -> None:
    project = make_project(files={"inference.py": "def broken(:\n"})
    with pytest.raises(InferenceBackendLoadError, match=r"SyntaxError: .*inference\.py, line 1"):
        LocalLoader("inference:Backend", base_dir=project).load()


def test_failed_import_leaves_no_half_module_behind(make_project: ProjectFactory) -> None:
    project = make_project(files={"inference.py": "raise RuntimeError('boom')\n"})
    before = set(sys.modules)
    with pytest.raises(InferenceBackendLoadError, match="RuntimeError: boom"):
        LocalLoader("inference:Backend", base_dir=project).load()
    assert not any(name.endswith(".inference") for name in set(sys.modules) - before)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("def Backend():\n    pass\n", "the function Backend()"),
        ("class Backend:\n    pass\n", "the class"),
        ("Backend = 42\n", "an int (42)"),
    ],
)
def test_non_backend_objects_are_rejected_naming_path_and_object(
    make_project: ProjectFactory, source: str, found: str
) -> None:
    project = make_project(files={"inference.py": source})
    with pytest.raises(InferenceBackendLoadError, match="does not appear to be") as caught:
        LocalLoader("inference:Backend", base_dir=project).load()
    assert '"inference:Backend"' in str(caught.value)
    assert found in str(caught.value)


def test_non_backend_class_is_not_instantiated(make_project: ProjectFactory) -> None:
    source = "class Backend:\n    def __init__(self):\n        raise SystemExit('constructed')\n"
    project = make_project(files={"inference.py": source})
    with pytest.raises(InferenceBackendLoadError, match="does not appear to be"):
        LocalLoader("inference:Backend", base_dir=project).load()


def test_initialize_failure_propagates_unwrapped(make_project: ProjectFactory) -> None:
    source = (
        IDENTITY_BACKEND + "\n    def initialize(self):\n        raise ValueError('no model')\n"
    )
    project = make_project(files={"inference.py": source})
    with pytest.raises(InferenceBackendInitializationError):
        LocalLoader("inference:Backend", base_dir=project).load()


def test_import_module_from_source_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        LocalLoader._import_module_from_source(tmp_path / "absent.py")
    (tmp_path / "present.py").write_text("VALUE = 3\n")
    assert LocalLoader._import_module_from_source(tmp_path / "present.py").VALUE == 3

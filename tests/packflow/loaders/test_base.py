import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from packflow import InferenceBackend
from packflow.exceptions import InferenceBackendLoadError
from packflow.loaders import InferenceBackendLoader, LocalLoader, ModuleLoader

from .conftest import CONFIGURED_BACKEND, IDENTITY_BACKEND, ProjectFactory

ENV_BACKEND = """
import os

from packflow import InferenceBackend

SEEN_AT_IMPORT = os.environ.get("PF_TEST_MODE")


class Backend(InferenceBackend):
    def execute(self, inputs):
        return [{"mode": SEEN_AT_IMPORT} for _ in inputs]
"""


@pytest.fixture
def env_project(make_project: ProjectFactory) -> Path:
    """A project whose packflow.yaml sets ``PF_TEST_MODE=fast``; its backend is ENV_BACKEND."""
    return make_project(
        files={"inference.py": ENV_BACKEND}, name="demo", env={"PF_TEST_MODE": "fast"}
    )


def test_from_project_works_from_any_working_directory(
    make_project: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(files={"inference.py": IDENTITY_BACKEND}, name="demo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    backend = InferenceBackendLoader.from_project(project)
    assert backend([{"a": 1}]) == [{"a": 1}]


def test_from_project_defaults_to_the_current_directory(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(make_project(files={"inference.py": IDENTITY_BACKEND}, name="demo"))
    assert isinstance(LocalLoader.from_project(), InferenceBackend)


def test_from_project_uses_the_configured_dotted_backend(make_project: ProjectFactory) -> None:
    project = make_project(
        files={"pkg/impl.py": IDENTITY_BACKEND + "\nclass Other(Backend):\n    pass\n"},
        name="demo",
        inference_backend="pkg.impl:Other",
    )
    assert type(InferenceBackendLoader.from_project(project)).__name__ == "Other"


def test_backend_config_supplies_kwargs_and_explicit_kwargs_win(
    make_project: ProjectFactory,
) -> None:
    project = make_project(
        files={"inference.py": CONFIGURED_BACKEND},
        name="demo",
        backend_config={"threshold": 0.7, "label": "yaml"},
    )
    assert InferenceBackendLoader.from_project(project)({"x": 0}) == {
        "threshold": 0.7,
        "label": "yaml",
    }
    assert InferenceBackendLoader.from_project(project, label="kwarg")({"x": 0}) == {
        "threshold": 0.7,
        "label": "kwarg",
    }


def test_env_is_applied_before_the_module_is_imported(
    env_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PF_TEST_MODE", raising=False)
    assert InferenceBackendLoader.from_project(env_project)({"x": 0}) == {"mode": "fast"}
    assert os.environ["PF_TEST_MODE"] == "fast"


def test_env_override_of_a_different_value_warns(
    env_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PF_TEST_MODE", "slow")
    InferenceBackendLoader.from_project(env_project)
    assert "PF_TEST_MODE" in caplog.text
    assert "'slow'" in caplog.text
    assert "'fast'" in caplog.text


def test_env_with_the_same_value_does_not_warn(
    env_project: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PF_TEST_MODE", "fast")
    InferenceBackendLoader.from_project(env_project)
    assert "PF_TEST_MODE" not in caplog.text


def test_module_loader_project_imports_from_the_project_folder(
    make_project: ProjectFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(
        files={"pf_test_project_pkg/__init__.py": "", "pf_test_project_pkg/b.py": IDENTITY_BACKEND},
        name="demo",
        loader="module",
        inference_backend="pf_test_project_pkg.b:Backend",
    )
    monkeypatch.chdir(tmp_path)
    assert isinstance(InferenceBackendLoader.from_project(project), InferenceBackend)


def test_two_local_projects_load_their_own_backend(make_project: ProjectFactory) -> None:
    def echo(tag: str) -> str:
        return (
            "from packflow import InferenceBackend\n\n\nclass Backend(InferenceBackend):\n"
            f"    def execute(self, inputs):\n        return [{{'tag': {tag!r}}} for _ in inputs]\n"
        )

    first = make_project("a", files={"inference.py": echo("a")}, name="a")
    second = make_project("b", files={"inference.py": echo("b")}, name="b")
    assert InferenceBackendLoader.from_project(first)({}) == {"tag": "a"}
    assert InferenceBackendLoader.from_project(second)({}) == {"tag": "b"}


def test_missing_packflow_yaml_is_file_not_found(make_project: ProjectFactory) -> None:
    with pytest.raises(FileNotFoundError, match=r"no packflow\.yaml found"):
        InferenceBackendLoader.from_project(make_project())


def test_invalid_packflow_yaml_names_the_field(make_project: ProjectFactory) -> None:
    project = make_project(files={"inference.py": IDENTITY_BACKEND}, name="demo", loader="remote")
    with pytest.raises(ValidationError, match="loader") as caught:
        InferenceBackendLoader.from_project(project)
    assert "packflow.yaml" in str(caught.value)


def test_missing_backend_file_is_a_load_error(make_project: ProjectFactory) -> None:
    with pytest.raises(InferenceBackendLoadError, match=r"inference\.py"):
        InferenceBackendLoader.from_project(make_project(name="demo"))


def test_a_hyphenated_local_module_loads_from_the_project(make_project: ProjectFactory) -> None:
    project = make_project(
        files={"my-model.py": IDENTITY_BACKEND}, name="demo", inference_backend="my-model:Backend"
    )
    backend = InferenceBackendLoader.from_project(project)
    assert backend([{"a": 1}]) == [{"a": 1}]


def test_named_picks_the_loader_by_its_name_for_a_project_folder(
    make_project: ProjectFactory,
) -> None:
    # A module name of its own: the module loader's import is shared through sys.modules.
    project = make_project(files={"pf_named_probe.py": IDENTITY_BACKEND}, name="demo")
    path = "pf_named_probe:Backend"
    local = InferenceBackendLoader.named("local", path, base_dir=project)
    assert isinstance(local, LocalLoader)
    assert local.base_dir == project.resolve()
    module = InferenceBackendLoader.named("module", path, base_dir=project)
    assert isinstance(module, ModuleLoader)
    assert module.load()([{"a": 1}]) == [{"a": 1}]  # the project folder is on sys.path


def test_named_refuses_an_unknown_loader_listing_the_known_ones() -> None:
    with pytest.raises(InferenceBackendLoadError, match="unknown loader 'remote'") as caught:
        InferenceBackendLoader.named("remote", "inference:Backend")
    assert "known loaders: local, module" in str(caught.value)

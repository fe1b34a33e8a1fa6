import stat
import zipfile
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from packflow import PackflowProject, __version__
from packflow.loaders import InferenceBackendLoader

TEMPLATE_FILES = {
    ".gitignore",
    "LICENSE.txt",
    "MODEL_CARD.md",
    "README.md",
    "inference.py",
    "packflow.yaml",
    "requirements.txt",
    "tests.py",
    "validate.py",
}
TEMPLATE_WARNINGS = [
    "'description' is empty. A description is recommended before distributing.",
    "'maintainers' is empty. At least one maintainer is recommended before distributing.",
    "'inference_backend' is the template default 'inference:Backend'. Name your backend's "
    "module and class before distributing.",
    "'MODEL_CARD.md' appears to be unchanged from template.",
    "'LICENSE.txt' is empty.",
    "'README.md' appears to be unchanged from template.",
]


pytestmark = pytest.mark.usefixtures("restore_import_state")


@pytest.fixture
def project(tmp_path: Path) -> PackflowProject:
    return PackflowProject.create("demo-model", parent_dir=tmp_path)


def test_create_writes_the_template(tmp_path: Path, project: PackflowProject) -> None:
    assert project.base_dir == tmp_path / "demo-model"
    assert {p.name for p in project.base_dir.iterdir()} == TEMPLATE_FILES
    assert repr(project) == f"PackflowProject @ {tmp_path / 'demo-model'}"
    assert project.has_packflow_config
    assert (project.base_dir / "requirements.txt").read_text() == f"packflow=={__version__}\n"
    assert "# demo-model" in (project.base_dir / "README.md").read_text()
    mode = stat.S_IMODE((project.base_dir / "inference.py").stat().st_mode)
    assert mode == 0o644


def test_create_writes_a_non_empty_version(project: PackflowProject) -> None:
    data = yaml.safe_load((project.base_dir / "packflow.yaml").read_text())
    assert data["name"] == "demo-model"
    assert data["version"] == "0.1.0"
    assert data["inference_backend"] == "inference:Backend"


def test_create_in_cwd_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert PackflowProject.create("here").base_dir == tmp_path / "here"


def test_create_applies_config_data(tmp_path: Path) -> None:
    project = PackflowProject.create(
        "demo", parent_dir=tmp_path, config_data={"description": "d", "extra": {"team": "x"}}
    )
    config = project.load_config()
    assert (config.description, config.extra, config.version) == ("d", {"team": "x"}, "0.1.0")


def test_create_refuses_an_existing_folder_without_force(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        PackflowProject.create("demo", parent_dir=tmp_path)
    assert not (tmp_path / "demo" / "inference.py").exists()
    PackflowProject.create("demo", parent_dir=tmp_path, force=True)
    assert (tmp_path / "demo" / "inference.py").exists()
    assert (tmp_path / "demo" / "keep.txt").read_text() == "mine"


def test_create_with_optional_files_writes_only_those_and_the_mandatory_ones(
    tmp_path: Path,
) -> None:
    project = PackflowProject.create("demo", parent_dir=tmp_path, optional_files=["README.md"])
    names = {p.name for p in project.base_dir.iterdir()}
    assert names == {"inference.py", "packflow.yaml", "requirements.txt", "README.md"}


def test_create_rejects_unknown_optional_files_and_templates(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unknown optional file"):
        PackflowProject.create("a", parent_dir=tmp_path, optional_files=["nope.md"])
    with pytest.raises(ValueError, match="Unknown template 'fancy'"):
        PackflowProject.create("b", parent_dir=tmp_path, template="fancy")
    assert list(tmp_path.iterdir()) == []


def test_create_rejects_an_invalid_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="invalid project name"):
        PackflowProject.create("9lives", parent_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_create_removes_the_folder_it_made_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("packflow.loaders.config.PackflowConfig.write_requirements", fail)
    with pytest.raises(OSError, match="disk full"):
        PackflowProject.create("demo", parent_dir=tmp_path)
    assert not (tmp_path / "demo").exists()


def test_fresh_project_backend_loads_and_passes_its_checks(project: PackflowProject) -> None:
    backend = InferenceBackendLoader.from_project(project.base_dir)
    assert backend.check_io([{"example_field": 1}]) == [{"example_field": 1}]


def test_fresh_project_validates_with_only_template_warnings(project: PackflowProject) -> None:
    errors, warnings = project.validate_required_files()
    assert errors == []
    assert warnings == TEMPLATE_WARNINGS


def test_missing_default_backend_file_is_named_without_a_config(
    project: PackflowProject,
) -> None:
    (project.base_dir / "inference.py").unlink()
    errors, _ = project.validate_required_files()
    assert len(errors) == 1
    assert "'inference.py' is missing" in errors[0]


def test_missing_dotted_backend_file_is_named_by_path(project: PackflowProject) -> None:
    config = project.load_config()
    config.inference_backend = "models.scorer:Scorer"
    config.write_yaml(project.base_dir)
    errors, _ = project.validate_required_files()
    assert any("'models/scorer.py' is missing" in error for error in errors)


def test_dotted_backend_file_in_sub_folder_validates(project: PackflowProject) -> None:
    (project.base_dir / "models").mkdir()
    (project.base_dir / "inference.py").rename(project.base_dir / "models" / "scorer.py")
    config = project.load_config()
    config.inference_backend = "models.scorer:Backend"
    config.write_yaml(project.base_dir)
    assert project.validate_required_files()[0] == []


def test_broken_backend_fails_the_smoke_test(project: PackflowProject) -> None:
    (project.base_dir / "inference.py").write_text("import pf_test_not_installed_anywhere\n")
    errors, _ = project.validate_required_files()
    assert len(errors) == 1
    assert "failed smoke test" in errors[0]
    assert "pf_test_not_installed_anywhere" in errors[0]


def test_invalid_packflow_yaml_is_an_error_naming_the_field_and_file(
    project: PackflowProject,
) -> None:
    path = project.base_dir / "packflow.yaml"
    path.write_text(path.read_text() + "loader: remote\n")
    errors, _ = project.validate_required_files()
    assert len(errors) == 1
    assert errors[0].startswith(f"Invalid {path}: field 'loader'")


def test_an_unknown_packflow_yaml_key_is_kept_and_warned_naming_a_close_key(
    project: PackflowProject,
) -> None:
    path = project.base_dir / "packflow.yaml"
    path.write_text(path.read_text() + "inference_backed: other:Backend\nowner: me\n")
    errors, warnings = project.validate_required_files()
    assert errors == []
    assert (
        "Unknown key 'inference_backed' in packflow.yaml is kept as a custom field. "
        "Did you mean 'inference_backend'?" in warnings
    )
    assert "Unknown key 'owner' in packflow.yaml is kept as a custom field." in warnings
    assert project.load_config().custom_fields == {
        "inference_backed": "other:Backend",
        "owner": "me",
    }


def test_missing_required_files_are_errors(project: PackflowProject) -> None:
    (project.base_dir / "requirements.txt").unlink()
    (project.base_dir / "packflow.yaml").unlink()
    errors, _ = project.validate_required_files()
    assert errors == [
        "Required file 'packflow.yaml' is missing.",
        "Required file 'requirements.txt' is missing.",
    ]


def test_requirements_checks(project: PackflowProject) -> None:
    requirements = project.base_dir / "requirements.txt"
    requirements.write_text("numpy>=1\n")
    errors, _ = project.validate_required_files()
    assert errors == ["'packflow' is not listed in requirements.txt."]

    requirements.write_text(
        "# comment\n--index-url https://example.invalid\npackflow==0.0.1\n"
        "pf-test-not-installed>=1\nnumpy<1\nnot a requirement!\n"
    )
    errors, warnings = project.validate_required_files()
    assert errors == []
    assert (
        f"requirements.txt specifies packflow==0.0.1, but installed version is {__version__}."
        in warnings
    )
    assert any("'pf-test-not-installed'" in w and "not installed" in w for w in warnings)
    assert any("Package 'numpy' version" in w and "numpy<1" in w for w in warnings)
    assert any("line 6 is not a valid requirement" in w for w in warnings)


def test_recommended_files(project: PackflowProject) -> None:
    (project.base_dir / "MODEL_CARD.md").unlink()
    (project.base_dir / "LICENSE.txt").write_text("MIT License\n")
    (project.base_dir / "README.md").write_text("# Demo\n\nScores things.\n")
    _, warnings = project.validate_required_files()
    assert "Recommended file 'MODEL_CARD.md' is missing." in warnings
    assert not any("LICENSE.txt" in w or "README.md" in w for w in warnings)


def test_verbose_validation_lists_checks(
    project: PackflowProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project.validate_required_files(verbose=True)
    out = capsys.readouterr().out
    for line in ("Required files:", "packflow.yaml", "inference.py", "Smoke test:", "README.md"):
        assert line in out


def fill_in(project: PackflowProject) -> None:
    config = project.load_config()
    config.description = "Scores things."
    config.maintainers = ["a@example.com"]
    config.write_yaml(project.base_dir)


def test_export_writes_name_version_zip_with_relative_paths(
    project: PackflowProject, tmp_path: Path
) -> None:
    out = tmp_path / "dist"
    archive = project.export(output_directory=out)
    assert archive == out / "demo_model-0.1.0.zip"
    with zipfile.ZipFile(archive) as zf:
        assert set(zf.namelist()) == TEMPLATE_FILES
        assert zf.read("packflow.yaml") == (project.base_dir / "packflow.yaml").read_bytes()
    assert project.export_warnings == TEMPLATE_WARNINGS
    assert not list(out.glob(".*partial"))


def test_export_excludes_caches_vcs_gitignored_and_old_exports(
    project: PackflowProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project.base_dir
    fill_in(project)
    extra = {
        "models/weights.bin": "keep",
        "models/__pycache__/x.cpython-311.pyc": "",
        "helper.pyc": "",
        ".git/HEAD": "",
        ".venv/lib/site.py": "",
        "sub/node_modules/x.js": "",
        ".pytest_cache/v": "",
        "data/raw/big.csv": "",
        "data/keep.csv": "keep",
        "secrets.env": "",
        "demo_model-0.0.9.zip": "",
        "notes/demo_model-0.0.9.zip": "keep",
        "pkg.egg-info/PKG-INFO": "",
    }
    for relative, text in extra.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / ".gitignore").write_text("data/raw/\n*.env\n")
    monkeypatch.chdir(root)
    archive = project.export()
    assert archive == root / "demo_model-0.1.0.zip"
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert names == (TEMPLATE_FILES | {"models/weights.bin", "data/keep.csv"}) | {
        "notes/demo_model-0.0.9.zip"
    }


def test_template_gitignore_ignores_only_this_projects_export_archives(
    project: PackflowProject,
) -> None:
    lines = (project.base_dir / ".gitignore").read_text().splitlines()
    assert "/demo_model-*.zip" in lines
    assert "*.zip" not in lines
    (project.base_dir / "model_artifacts.zip").write_bytes(b"PK")
    (project.base_dir / "demo_model-0.0.1.zip").write_bytes(b"PK")
    archive = project.export(output_directory=project.base_dir)
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert "model_artifacts.zip" in names
    assert "demo_model-0.0.1.zip" not in names


def test_export_reports_what_gitignore_excluded_and_warns_on_model_files(
    project: PackflowProject, tmp_path: Path
) -> None:
    root = project.base_dir
    fill_in(project)
    files = {
        "model.onnx": b"x",
        "data/raw/a.csv": b"1",
        "data/raw/big.csv": b"0" * 1_200_000,
        "notes.tmp": b"",
        "b.tmp": b"",
        "c.tmp": b"",
        "d.tmp": b"",
    }
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
    (root / ".gitignore").write_text("*.onnx\ndata/raw/\n*.tmp\n")
    project.export(output_directory=tmp_path)
    warnings = project.export_warnings
    assert (
        ".gitignore excluded 7 file(s) from the archive: b.tmp, c.tmp, d.tmp, data/raw/a.csv, "
        "data/raw/big.csv and 2 more." in warnings
    )
    model_warnings = [w for w in warnings if "may be a model artifact" in w]
    assert model_warnings == [
        ".gitignore excluded 'data/raw/big.csv' (1.2 MB), which may be a model artifact the "
        "backend needs: remove its pattern from .gitignore to ship it.",
        ".gitignore excluded 'model.onnx' (a .onnx file), which may be a model artifact the "
        "backend needs: remove its pattern from .gitignore to ship it.",
    ]


def test_export_without_gitignored_files_adds_no_warning(
    project: PackflowProject, tmp_path: Path
) -> None:
    (project.base_dir / ".gitignore").unlink()
    project.export(output_directory=tmp_path)
    assert not any(".gitignore" in w for w in project.export_warnings)


def test_export_twice_does_not_include_itself(project: PackflowProject) -> None:
    first = project.export(output_directory=project.base_dir)
    second = project.export(output_directory=project.base_dir)
    assert first == second
    with zipfile.ZipFile(second) as zf:
        assert not any(name.endswith(".zip") for name in zf.namelist())


def test_export_is_blocked_by_validation_errors(project: PackflowProject, tmp_path: Path) -> None:
    (project.base_dir / "inference.py").unlink()
    with pytest.raises(ValueError, match="Export blocked due to validation errors:") as caught:
        project.export(output_directory=tmp_path)
    assert "  - Inference backend file 'inference.py' is missing." in str(caught.value)
    assert not list(tmp_path.glob("*.zip"))


def test_export_write_failure_is_an_os_error_naming_the_archive(
    project: PackflowProject, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(OSError, match="Could not write the archive"):
        project.export(output_directory=blocker)

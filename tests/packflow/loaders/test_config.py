import re
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from packflow import __version__
from packflow.loaders import PackflowConfig, PackflowConfigError
from packflow.loaders.config import (
    NAME_PATTERN,
    check_python_version,
    describe_config_error,
    load_packflow_config,
    validate_for_export,
)

from .conftest import IDENTITY_BACKEND, ProjectFactory

RUNTIME = "{}.{}.{}".format(*sys.version_info[:3])


def complete_config(**overrides: object) -> PackflowConfig:
    fields: dict[str, object] = {
        "name": "demo",
        "version": "1.0.0",
        "description": "A demo.",
        "maintainers": ["a@example.com"],
    }
    return PackflowConfig(**{**fields, **overrides})


def test_defaults() -> None:
    config = PackflowConfig(name="demo")
    assert config.version == ""
    assert config.description == ""
    assert config.maintainers == []
    assert config.inference_backend == "inference:Backend"
    assert config.loader == "local"
    assert config.python_version == RUNTIME
    assert (config.env, config.backend_config, config.extra) == ({}, {}, {})


@pytest.mark.parametrize("name", ["a", "Model_1", "my-analytic", "x9-_"])
def test_valid_names_match_name_pattern(name: str) -> None:
    assert re.fullmatch(NAME_PATTERN, name)
    assert PackflowConfig(name=name).name == name


@pytest.mark.parametrize("name", ["", "1model", "-x", "has space", "dot.ted", "ü"])
def test_invalid_names_are_rejected(name: str) -> None:
    assert not re.fullmatch(NAME_PATTERN, name)
    with pytest.raises(ValidationError, match="invalid project name"):
        PackflowConfig(name=name)


def test_loader_must_be_local_or_module() -> None:
    with pytest.raises(ValidationError, match="Input should be 'local' or 'module'"):
        PackflowConfig(name="demo", loader="remote")


@pytest.mark.parametrize("reference", ["inference", "a:b:c", "../up:Backend", "inference:not-id"])
def test_malformed_inference_backend_is_rejected(reference: str) -> None:
    with pytest.raises(ValidationError, match="inference_backend"):
        PackflowConfig(name="demo", inference_backend=reference)


def write_yaml(root: Path, text: str) -> Path:
    (root / "packflow.yaml").write_text(text)
    return root


def test_from_project_path_reads_every_section(tmp_path: Path) -> None:
    write_yaml(
        tmp_path,
        """
name: demo
version: "1.10"
description: d
maintainers: [a@example.com]
inference_backend: models.scorer:Scorer
loader: module
python_version: "3.11.4"
env: {OMP_NUM_THREADS: 4, FAST: true, NAME: x}
backend_config: {threshold: 0.5, feature_names: [a, b]}
extra: {team: {name: risk}}
""",
    )
    config = PackflowConfig.from_project_path(tmp_path)
    assert config.version == "1.10"
    assert config.inference_backend == "models.scorer:Scorer"
    assert config.loader == "module"
    assert config.env == {"OMP_NUM_THREADS": "4", "FAST": "true", "NAME": "x"}
    assert config.backend_config == {"threshold": 0.5, "feature_names": ["a", "b"]}
    assert config.extra == {"team": {"name": "risk"}}


def test_empty_sections_mean_empty_values(tmp_path: Path) -> None:
    write_yaml(tmp_path, "name: demo\ndescription:\nmaintainers:\nenv:\nextra:\n")
    config = PackflowConfig.from_project_path(tmp_path)
    assert (config.description, config.maintainers, config.env, config.extra) == ("", [], {}, {})


def test_unknown_top_level_keys_are_kept_as_custom_fields_and_written_back(
    tmp_path: Path,
) -> None:
    write_yaml(tmp_path, "name: demo\nteam: risk\nextra:\n  a: 1\n")
    config = PackflowConfig.from_project_path(tmp_path)
    assert config.custom_fields == {"team": "risk"}
    text = config.write_yaml(tmp_path).read_text()
    assert "# === CUSTOM ===\nteam: risk\nextra:\n  a: 1\n" in text
    assert PackflowConfig.from_project_path(tmp_path).custom_fields == {"team": "risk"}


def test_validate_for_export_warns_on_each_unknown_key_naming_a_close_one() -> None:
    config = complete_config(inference_backend="scorer:Scorer", infrence_backend="x:Y", team=1)
    _errors, warnings = validate_for_export(config)
    assert warnings == [
        "Unknown key 'infrence_backend' in packflow.yaml is kept as a custom field. "
        "Did you mean 'inference_backend'?",
        "Unknown key 'team' in packflow.yaml is kept as a custom field.",
    ]


def test_an_invalid_field_is_a_pydantic_validation_error_naming_field_and_file(
    tmp_path: Path,
) -> None:
    write_yaml(tmp_path, "name: demo\nmaintainers: 5\nloader: remote\n")
    with pytest.raises(ValidationError) as caught:
        PackflowConfig.from_project_path(tmp_path)
    assert str(tmp_path / "packflow.yaml") in str(caught.value)
    assert [e["loc"] for e in caught.value.errors()] == [("maintainers",), ("loader",)]
    line = describe_config_error(caught.value)
    assert line.startswith(f"Invalid {tmp_path / 'packflow.yaml'}: field 'maintainers'")
    assert "field 'loader'" in line
    assert "'remote'" in line


def test_missing_name_is_named(tmp_path: Path) -> None:
    write_yaml(tmp_path, "version: '1'\n")
    with pytest.raises(ValidationError, match="name") as caught:
        PackflowConfig.from_project_path(tmp_path)
    assert "field 'name' is required" in describe_config_error(caught.value)


@pytest.mark.parametrize("field", ["version", "python_version"])
def test_unquoted_numeric_version_is_an_error_with_a_hint(tmp_path: Path, field: str) -> None:
    write_yaml(tmp_path, f"name: demo\n{field}: 1.10\n")
    with pytest.raises(ValidationError, match="versions must be quoted") as caught:
        PackflowConfig.from_project_path(tmp_path)
    assert f"field '{field}': versions must be quoted" in describe_config_error(caught.value)


@pytest.mark.parametrize("reference", ["my-model:Backend", "models.my-scorer:Scorer", "2024-m:B"])
def test_hyphenated_module_paths_are_accepted_for_the_local_loader(reference: str) -> None:
    assert PackflowConfig(name="demo", inference_backend=reference).inference_backend == reference


def test_hyphenated_module_paths_are_rejected_for_the_module_loader() -> None:
    with pytest.raises(ValidationError, match="Python identifiers"):
        PackflowConfig(name="demo", loader="module", inference_backend="my-model:Backend")


def test_yaml_syntax_error_is_reported_with_the_file(tmp_path: Path) -> None:
    write_yaml(tmp_path, "name: [unclosed\n")
    with pytest.raises(PackflowConfigError, match="not valid YAML"):
        PackflowConfig.from_project_path(tmp_path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write_yaml(tmp_path, "- name\n- demo\n")
    with pytest.raises(PackflowConfigError, match="expected a mapping"):
        PackflowConfig.from_project_path(tmp_path)


def test_missing_yaml_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Not a valid packflow project"):
        PackflowConfig.from_project_path(tmp_path)


def test_load_packflow_config_requires_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="Could not identify packflow project"):
        load_packflow_config(tmp_path / "absent")
    write_yaml(tmp_path, "name: demo\n")
    assert load_packflow_config(tmp_path).name == "demo"


def test_archive_file_name_replaces_hyphens_in_the_name(tmp_path: Path) -> None:
    config = PackflowConfig(name="my-model", version="1.2.0")
    assert config.archive_file_name(tmp_path) == tmp_path / "my_model-1.2.0.zip"


def test_write_yaml_round_trips_in_commented_sections(tmp_path: Path) -> None:
    config = complete_config(
        version="1.10", env={"A": "1"}, backend_config={"verbose": True}, extra={"k": [1]}
    )
    path = config.write_yaml(tmp_path)
    text = path.read_text()
    headers = [line for line in text.splitlines() if line.startswith("# ===")]
    assert headers == [
        "# === METADATA ===",
        "# === RUNTIME ===",
        "# === ENVIRONMENT ===",
        "# === BACKEND CONFIG ===",
        "# === CUSTOM ===",
    ]
    assert PackflowConfig.from_project_path(tmp_path) == config


def test_write_yaml_leaves_out_empty_optional_sections(tmp_path: Path) -> None:
    text = PackflowConfig(name="demo").write_yaml(tmp_path).read_text()
    assert "ENVIRONMENT" not in text
    assert "CUSTOM" not in text
    assert set(yaml.safe_load(text)) == {
        "name",
        "version",
        "description",
        "maintainers",
        "inference_backend",
        "loader",
        "python_version",
    }


def test_write_requirements_pins_the_installed_packflow(tmp_path: Path) -> None:
    path = PackflowConfig(name="demo").write_requirements(tmp_path)
    assert path.read_text().strip() == f"packflow=={__version__}"


def test_check_python_version() -> None:
    assert check_python_version(complete_config(python_version=RUNTIME)) is None
    other = f"{sys.version_info[0]}.{sys.version_info[1] + 1}.0"
    mismatch = check_python_version(complete_config(python_version=other))
    assert mismatch is not None
    assert other in mismatch
    unparsable = check_python_version(complete_config(python_version="three"))
    assert unparsable is not None
    assert "Could not parse python_version 'three'" in unparsable


def test_validate_for_export_complete_config_without_project_is_clean() -> None:
    assert validate_for_export(complete_config(inference_backend="scorer:Scorer")) == ([], [])


def test_validate_for_export_warns_on_the_default_inference_backend() -> None:
    _errors, warnings = validate_for_export(complete_config(inference_backend="inference:Backend"))
    assert warnings == [
        "'inference_backend' is the template default 'inference:Backend'. Name your "
        "backend's module and class before distributing."
    ]


def test_validate_for_export_blank_fields() -> None:
    errors, warnings = validate_for_export(
        complete_config(version=" ", description="", maintainers=[], python_version="x")
    )
    assert errors == ["'version' is required for export but is empty."]
    assert any("'description' is empty" in w for w in warnings)
    assert any("'maintainers' is empty" in w for w in warnings)
    assert any("python_version" in w for w in warnings)


def test_validate_for_export_reports_missing_dotted_backend_file(tmp_path: Path) -> None:
    errors, _ = validate_for_export(
        complete_config(inference_backend="models.scorer:Scorer"), project_dir=tmp_path
    )
    assert len(errors) == 1
    assert "'models/scorer.py' is missing" in errors[0]


def test_validate_for_export_smoke_loads_the_backend(make_project: ProjectFactory) -> None:
    project = make_project(files={"models/scorer.py": IDENTITY_BACKEND})
    config = complete_config(inference_backend="models.scorer:Backend")
    assert validate_for_export(config, project_dir=project) == ([], [])


def test_validate_for_export_reports_smoke_failures_silently(
    make_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    source = IDENTITY_BACKEND + (
        "\n    def initialize(self):"
        "\n        print('noise')"
        "\n        raise ValueError('no model')\n"
    )
    project = make_project(files={"inference.py": source})
    errors, _ = validate_for_export(complete_config(), project_dir=project)
    assert len(errors) == 1
    assert errors[0].startswith("inference_backend 'inference:Backend' failed smoke test:")
    assert "no model" in errors[0]
    assert "noise" not in capsys.readouterr().out


def test_smoke_test_restores_the_environment(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PF_TEST_SMOKE", raising=False)
    project = make_project(files={"inference.py": IDENTITY_BACKEND})
    config = complete_config(env={"PF_TEST_SMOKE": "1"})
    errors, _warnings = validate_for_export(config, project_dir=project)
    assert errors == []
    import os

    assert "PF_TEST_SMOKE" not in os.environ


def test_verbose_lists_each_check(capsys: pytest.CaptureFixture[str]) -> None:
    validate_for_export(complete_config(description=""), verbose=True)
    out = capsys.readouterr().out
    assert "name: demo" in out
    assert "description (empty)" in out
    assert "loader: local" in out

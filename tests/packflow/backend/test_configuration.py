"""BackendConfig and the config hierarchy: defaults < kwargs < BACKEND_CONFIG_FILE_PATH."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from packflow.backend.configuration import (
    BackendConfig,
    InputFormats,
    _load_overrides_from_env,
    _resolve_configs,
    load_backend_configuration,
)
from packflow.constants import BACKEND_CONFIG_PATH_ENV_VAR_NAME
from packflow.testing import capture_logs


@pytest.fixture(autouse=True)
def _no_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_CONFIG_PATH_ENV_VAR_NAME, raising=False)


def _env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: Any) -> Path:
    path = tmp_path / "backend_config.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    monkeypatch.setenv(BACKEND_CONFIG_PATH_ENV_VAR_NAME, str(path))
    return path


def test_defaults_match_0_4() -> None:
    config = BackendConfig()
    assert config.verbose is False
    assert config.input_format is InputFormats.RECORDS
    assert config.rename_fields == {}
    assert config.feature_names == []
    assert config.flatten_nested_inputs is False
    assert config.flatten_lists is False
    assert config.nested_field_delimiter == "."
    assert config.ignore_delimiter_collisions is False


@pytest.mark.parametrize("fmt", ["passthrough", "records", "numpy"])
def test_input_format_accepts_the_three_names(fmt: str) -> None:
    assert BackendConfig(input_format=fmt).input_format.value == fmt  # type: ignore[arg-type]


def test_unknown_input_format_is_a_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="input_format"):
        BackendConfig(input_format="parquet")  # type: ignore[arg-type]


def test_empty_delimiter_is_rejected() -> None:
    with pytest.raises(ValidationError, match="nested_field_delimiter"):
        BackendConfig(nested_field_delimiter="")


def test_unknown_keys_are_dropped() -> None:
    config = load_backend_configuration(BackendConfig, not_a_field=1)
    assert not hasattr(config, "not_a_field")


def test_kwargs_override_defaults() -> None:
    config = load_backend_configuration(BackendConfig, verbose=True, feature_names=["a"])
    assert config.verbose is True
    assert config.feature_names == ["a"]


def test_env_file_overrides_kwargs_and_deep_merges_dicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env_file(
        tmp_path,
        monkeypatch,
        {"configs": {"rename_fields": {"b": "B2", "c": "C"}, "feature_names": ["z"]}},
    )
    config = load_backend_configuration(
        BackendConfig, rename_fields={"a": "A", "b": "B"}, feature_names=["x", "y"]
    )
    assert config.rename_fields == {"a": "A", "b": "B2", "c": "C"}
    assert config.feature_names == ["z"]  # lists are replaced, not merged


def test_merge_never_mutates_the_callers_kwargs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env_file(tmp_path, monkeypatch, {"configs": {"rename_fields": {"b": "B2"}}})
    kwargs = {"rename_fields": {"a": "A"}, "feature_names": ["x"]}
    before = copy.deepcopy(kwargs)
    load_backend_configuration(BackendConfig, **kwargs)  # type: ignore[arg-type]
    assert kwargs == before


def test_resolve_configs_returns_the_merged_dict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _resolve_configs({"verbose": True}) == {"verbose": True}
    _env_file(tmp_path, monkeypatch, {"configs": {"verbose": False, "extra": {"k": 1}}})
    assert _resolve_configs({"verbose": True, "extra": {"j": 2}}) == {
        "verbose": False,
        "extra": {"j": 2, "k": 1},
    }


def test_overrides_are_empty_without_the_env_variable() -> None:
    assert _load_overrides_from_env() == {}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "JSONDecodeError"),
        ("[1, 2]", "JSON list"),
        ('{"verbose": true}', '"configs"'),
        ('{"configs": [1]}', '"configs"'),
    ],
)
def test_unusable_env_file_logs_a_warning_and_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, reason: str
) -> None:
    path = _env_file(tmp_path, monkeypatch, content)
    with capture_logs() as logs:
        assert _load_overrides_from_env() == {}
    assert len(logs) == 1
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["path"] == str(path)
    assert reason in logs[0]["reason"]


def test_missing_env_file_logs_a_warning_and_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BACKEND_CONFIG_PATH_ENV_VAR_NAME, str(tmp_path / "absent.json"))
    with capture_logs() as logs:
        config = load_backend_configuration(BackendConfig, verbose=True)
    assert config.verbose is True
    assert [e["log_level"] for e in logs] == ["warning"]
    assert "FileNotFoundError" in logs[0]["reason"]


def test_subclassed_config_with_env_file_and_kwargs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Config(BackendConfig):
        model_path: str
        params: dict[str, int] = {"depth": 3, "width": 8}

    _env_file(tmp_path, monkeypatch, {"configs": {"params": {"width": 16}}})
    config = load_backend_configuration(Config, model_path="m.bin", params={"depth": 5})
    assert isinstance(config, Config)
    assert config.model_path == "m.bin"
    assert config.params == {"depth": 5, "width": 16}


def test_env_file_can_supply_a_required_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Config(BackendConfig):
        model_path: str

    _env_file(tmp_path, monkeypatch, {"configs": {"model_path": "from-env"}})
    assert load_backend_configuration(Config).model_path == "from-env"


def test_config_instance_values_are_the_lowest_layer() -> None:
    class Config(BackendConfig):
        threshold: float

    base = Config(threshold=0.3, feature_names=["a"])
    config = load_backend_configuration(base, verbose=True)
    assert isinstance(config, Config)
    assert (config.threshold, config.feature_names, config.verbose) == (0.3, ["a"], True)
    assert base.verbose is False


def test_an_unknown_keyword_logs_one_warning_naming_the_closest_field() -> None:
    class Config(BackendConfig):
        threshold: float = 0.5

    with capture_logs() as logs:
        config = load_backend_configuration(Config, treshold=0.9, verbose=True)
    assert config.threshold == 0.5  # ignored, as in 0.4.x
    warnings = [e for e in logs if e["event"] == "backend_config_key_unknown"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["key"] == "treshold"
    assert warnings[0]["closest"] == "threshold"
    assert "did you mean 'threshold'?" in warnings[0]["message"]


def test_known_keywords_log_nothing() -> None:
    with capture_logs() as logs:
        load_backend_configuration(BackendConfig, verbose=True, feature_names=["a"])
    assert logs == []

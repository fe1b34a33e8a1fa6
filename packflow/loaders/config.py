"""``packflow.yaml``: the project file read by loaders, ``packflow validate`` and ``export``."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from packflow.constants import PACKAGING_CONFIG_NAME, REQUIREMENTS_TEXT_NAME
from packflow.exceptions import PackflowError
from packflow.logger import logger as _logger

from .utils import inference_backend_parts

__all__ = [
    "NAME_PATTERN",
    "PackflowConfig",
    "PackflowConfigError",
    "apply_env_vars",
    "describe_config_error",
    "load_packflow_config",
]
# Also importable from here, as in packflow 0.4.x: validate_for_export and
# check_python_version (defined in packflow.loaders.export_checks; see __getattr__).


DEFAULT_INFERENCE_BACKEND = "inference:Backend"

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
"""Project names start with a letter and hold only letters, digits, ``-`` and ``_``."""

METADATA_KEYS = ("name", "version", "description", "maintainers")
RUNTIME_KEYS = ("inference_backend", "loader", "python_version")

_NAME_RULE = "names start with a letter and contain only letters, digits, hyphens and underscores"


def get_python_version() -> str:
    """The running interpreter's version as ``X.Y.Z``."""
    return "{}.{}.{}".format(*sys.version_info[:3])


class PackflowConfigError(PackflowError, ValueError):
    """``packflow.yaml`` cannot be read as a YAML mapping; the message names the file.

    Invalid field values raise ``pydantic.ValidationError`` instead (as packflow 0.4.x did),
    titled with the file's path; :func:`describe_config_error` words it in one line.
    ``problems`` lists one message per problem.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class PackflowConfig(BaseModel):
    """The contents of ``packflow.yaml``.

    Metadata (``name``, ``version``, ``description``, ``maintainers``), runtime
    (``inference_backend``, ``loader``, ``python_version``), ``env`` (environment variables set
    before the backend is imported), ``backend_config`` (keyword arguments for the backend's
    config; explicit keyword arguments win) and ``extra`` (free-form user data). Any other
    top-level key is kept as a custom field (``model_extra``; written back under
    ``# === CUSTOM ===``), and ``validate_for_export`` warns about each, naming the closest
    known key.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str
    version: str = ""
    description: str = ""
    maintainers: list[str] = Field(default_factory=list)

    # loader first: inference_backend's check depends on it (fields validate in order)
    loader: Literal["local", "module"] = "local"
    inference_backend: str = DEFAULT_INFERENCE_BACKEND
    python_version: str = Field(default_factory=get_python_version)

    env: dict[str, str] = Field(default_factory=dict)
    backend_config: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(f"invalid project name: {_NAME_RULE}")
        return value

    @field_validator("version", "python_version", mode="before")
    @classmethod
    def _reject_numbers(cls, value: Any) -> Any:
        # YAML reads `version: 1.10` as the float 1.1; refuse rather than guess.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                "versions must be quoted strings in YAML (an unquoted 1.10 reads as the number 1.1)"
            )
        return "" if value is None else value

    @field_validator("description", "maintainers", "backend_config", "extra", mode="before")
    @classmethod
    def _none_is_the_default(cls, value: Any, info: ValidationInfo) -> Any:
        # A key left blank in YAML reads as None: take the field's (empty) default.
        if value is None and info.field_name is not None:
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_values_as_strings(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {key: _env_string(item) for key, item in value.items()}
        return value

    @field_validator("inference_backend")
    @classmethod
    def _check_inference_backend(cls, value: str, info: ValidationInfo) -> str:
        module, attribute = inference_backend_parts(value)
        loader = info.data.get("loader", "local")
        # The local loader imports files (<part>/<part>.py), so file names such as
        # my-model.py are fine there; the module loader imports Python module names.
        valid_part = _is_file_part if loader == "local" else str.isidentifier
        if not (all(valid_part(part) for part in module.split(".")) and attribute.isidentifier()):
            rule = (
                "letters, digits, '_' and '-' (file names)"
                if loader == "local"
                else "Python identifiers"
            )
            raise ValueError(
                f'"{value}" is not a valid "<module>:<attribute>" reference for the {loader} '
                f"loader: the module path's parts must be {rule} and the attribute a Python "
                'identifier, e.g. "inference:Backend"'
            )
        return f"{module}:{attribute}"

    @classmethod
    def from_project_path(cls, base_dir: str | Path) -> PackflowConfig:
        """Read ``<base_dir>/packflow.yaml``.

        Raises:
            FileNotFoundError: the folder has no ``packflow.yaml``.
            PackflowConfigError: the file is not YAML or not a mapping.
            pydantic.ValidationError: a field is invalid; titled with the file's path, so the
                message names the file and each field.
        """
        path = Path(base_dir).resolve() / PACKAGING_CONFIG_NAME
        return cls.from_mapping(_read_yaml_mapping(path), source=str(path))

    @classmethod
    def from_mapping(
        cls, data: dict[str, Any], source: str = PACKAGING_CONFIG_NAME
    ) -> PackflowConfig:
        """Validate a mapping; a ``pydantic.ValidationError`` is titled with ``source``."""
        try:
            return cls(**{str(key): value for key, value in data.items()})
        except ValidationError as exc:
            raise ValidationError.from_exception_data(
                source,
                exc.errors(include_url=False),  # type: ignore[arg-type]
            ) from None

    @property
    def custom_fields(self) -> dict[str, Any]:
        """The top-level keys packflow does not know, kept as written."""
        return dict(self.model_extra or {})

    def archive_file_name(self, base_dir: str | Path) -> Path:
        """``<base_dir>/<name>-<version>.zip`` with ``-`` in the name written as ``_``."""
        return Path(base_dir).resolve() / f"{self.name.replace('-', '_')}-{self.version}.zip"

    def write_yaml(self, base_dir: str | Path) -> Path:
        """Write ``packflow.yaml`` into ``base_dir`` in commented sections; return its path."""
        import yaml

        data = self.model_dump()
        sections: list[tuple[str, dict[str, Any]]] = [
            ("METADATA", {key: data[key] for key in METADATA_KEYS}),
            ("RUNTIME", {key: data[key] for key in RUNTIME_KEYS}),
        ]
        for title, key in (("ENVIRONMENT", "env"), ("BACKEND CONFIG", "backend_config")):
            if data[key]:
                sections.append((title, {key: data[key]}))
        custom = {key: data[key] for key in self.custom_fields}
        if data["extra"]:
            custom["extra"] = data["extra"]
        if custom:
            sections.append(("CUSTOM", custom))
        text = "\n".join(
            f"# === {title} ===\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
            for title, body in sections
        )
        path = Path(base_dir).resolve() / PACKAGING_CONFIG_NAME
        path.write_text(text, encoding="utf-8")
        return path

    def write_requirements(self, base_dir: str | Path) -> Path:
        """Write ``requirements.txt`` pinning the installed packflow; return its path."""
        from packflow import __version__

        path = Path(base_dir).resolve() / REQUIREMENTS_TEXT_NAME
        path.write_text(f"packflow=={__version__}\n", encoding="utf-8")
        return path


def apply_env_vars(config: PackflowConfig) -> None:
    """Set ``config.env`` in ``os.environ``, warning when a different value is overridden."""
    for key, value in config.env.items():
        existing = os.environ.get(key)
        if existing is not None and existing != value:
            _logger.warning(
                "packflow.yaml env overrides environment variable {name} (was {was!r}, now "
                "{now!r})",
                event="env_var_overridden",
                name=key,
                was=existing,
                now=value,
            )
        os.environ[key] = value


def load_packflow_config(path_or_module: str | Path) -> PackflowConfig:
    """Read the ``packflow.yaml`` of the project folder ``path_or_module``.

    Raises:
        NotADirectoryError: the path does not exist.
    """
    project_dir = Path(path_or_module).resolve()
    if not project_dir.exists():
        raise NotADirectoryError(f"Could not identify packflow project at {path_or_module}")
    return PackflowConfig.from_project_path(project_dir)


def no_config_message(folder: Path) -> str:
    """What to say when ``folder`` has no packflow.yaml."""
    return (
        f"Not a valid packflow project: no {PACKAGING_CONFIG_NAME} found in {folder}. "
        "Run 'packflow create <name>' to start one."
    )


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(no_config_message(path.parent)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PackflowConfigError(f"Could not read {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PackflowConfigError(f"Invalid {path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PackflowConfigError(
            f"Invalid {path}: expected a mapping of keys to values at the top level, "
            f"got {type(data).__name__}"
        )
    return data


def describe_config_error(exc: ValidationError) -> str:
    """One line for a ``packflow.yaml`` ``ValidationError``: ``Invalid <file>: field ...``."""
    return f"Invalid {exc.title}: " + "; ".join(_describe_error(e) for e in exc.errors())


def _is_file_part(part: str) -> bool:
    """A folder or file name (without ``.py``) the local loader can import: ``my-model``."""
    return re.fullmatch(r"[\w-]+", part) is not None


def _describe_error(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"field '{location}' is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"field '{location}': {message} (got {error['input']!r})"


def _env_string(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _shorten(text: str, limit: int = 50) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def __getattr__(name: str) -> Any:
    """``validate_for_export`` and ``check_python_version`` as packflow 0.4.x had them here.

    They live in :mod:`packflow.loaders.export_checks`, which loads the backend for its smoke
    test, so this module (the file's model, which every loader imports) stays free of it.
    """
    if name in ("validate_for_export", "check_python_version"):
        from packflow.loaders import export_checks

        return getattr(export_checks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

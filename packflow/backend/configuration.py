"""Backend configuration: the ``BackendConfig`` model and how its values are resolved.

Values are deep-merged from three layers, lowest first:

1. the defaults of the model (or the values of a ``BackendConfig`` *instance* used as
   ``backend_config_model``);
2. the keyword arguments given to the backend (``Backend(**kwargs)``; packflow 0.4.1 loaders
   pass the ``backend_config`` section of ``packflow.yaml`` this way);
3. the ``"configs"`` object of the JSON file named by the environment variable
   ``BACKEND_CONFIG_FILE_PATH`` (the packflow 0.4.0 route).

Nested dicts merge key by key; lists and scalars are replaced. The caller's objects are never
mutated.
"""

from __future__ import annotations

import copy
import difflib
import enum
import json
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from packflow.constants import BACKEND_CONFIG_PATH_ENV_VAR_NAME
from packflow.logger import logger as _logger

__all__ = [
    "BackendConfig",
    "InputFormats",
    "load_backend_configuration",
]

ConfigT = TypeVar("ConfigT", bound="BackendConfig")


class InputFormats(enum.Enum):
    """How the built-in preprocessor shapes records before ``transform_inputs``/``execute``."""

    PASSTHROUGH = "passthrough"
    RECORDS = "records"
    NUMPY = "numpy"


class BackendConfig(BaseModel):
    """Configuration of an ``InferenceBackend``; subclass it to add your own fields.

    Attributes:
        verbose: log the metrics of every call, one line at DEBUG level (as packflow 0.4.x;
            shown with ``PACKFLOW_LOG_LEVEL=DEBUG`` or a loguru handler at DEBUG).
        input_format: ``"records"`` (default), ``"numpy"`` or ``"passthrough"``.
        rename_fields: ``{old_name: new_name}``; dotted paths reach into nested dicts.
        feature_names: fields to keep, in this order (names *after* renaming).
        flatten_nested_inputs: flatten nested dicts into ``"a.b"`` keys.
        flatten_lists: when flattening, also flatten lists into ``"a.0"`` keys.
        nested_field_delimiter: the separator of nested paths (default ``"."``).
        ignore_delimiter_collisions: do not fail when a key that contains the delimiter
            makes a requested nested path ambiguous (the literal key then wins).
        output_keys: keys every output row is expected to have; ``validate()`` warns
            about declared keys that no output row has (packflow 0.4.1).
        numpy_dtype: with ``input_format="numpy"``, a numeric dtype (e.g. ``"float32"``)
            for a strict array: every cell must be a number, else an error names the record,
            the field and the value's type. ``None`` (default): 0.4.1's inferred dtype.
    """

    verbose: bool = False
    input_format: InputFormats = InputFormats.RECORDS
    rename_fields: dict[str, str] = Field(default_factory=dict)
    feature_names: list[str] = Field(default_factory=list)
    flatten_nested_inputs: bool = False
    flatten_lists: bool = False
    nested_field_delimiter: str = Field(default=".", min_length=1)
    ignore_delimiter_collisions: bool = False
    output_keys: list[str] = Field(default_factory=list)
    numpy_dtype: str | None = None


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return a new dict: ``override`` merged into ``base``, dicts key by key, never in place."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _load_overrides_from_env() -> dict[str, Any]:
    """Read the ``"configs"`` object of the JSON file named by ``BACKEND_CONFIG_FILE_PATH``.

    Returns ``{}`` when the variable is unset or empty. A missing or unreadable file, a file
    that is not a JSON object, or one without a ``"configs"`` object logs a warning naming
    the file and is ignored.
    """
    path = os.environ.get(BACKEND_CONFIG_PATH_ENV_VAR_NAME)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            content = json.load(fh)
    except (OSError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    else:
        if not isinstance(content, dict):
            reason = f"top level is a JSON {type(content).__name__}, expected an object"
        elif not isinstance(configs := content.get("configs"), dict):
            reason = 'no "configs" object at the top level'
        else:
            return configs
    _logger.warning(
        "Ignoring the backend config file {path!r} named by ${env_var}: {reason}",
        event="backend_config_file_ignored",
        path=path,
        env_var=BACKEND_CONFIG_PATH_ENV_VAR_NAME,
        reason=reason,
    )
    return {}


def _resolve_configs(
    backend_kwargs: Mapping[str, Any], base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Deep-merge ``base`` < ``backend_kwargs`` < the env-file overrides into a new dict."""
    merged = _deep_merge(base or {}, backend_kwargs)
    overrides = _load_overrides_from_env()
    if overrides:
        merged = _deep_merge(merged, overrides)
    return merged


def load_backend_configuration(
    backend_config_model: type[ConfigT] | ConfigT = BackendConfig,  # type: ignore[assignment]
    **backend_kwargs: Any,
) -> ConfigT:
    """Build and validate a backend configuration.

    Args:
        backend_config_model: a ``BackendConfig`` subclass, or an instance whose values
            become the lowest layer of the hierarchy.
        **backend_kwargs: configuration values; the env file (if any) overrides them.

    Raises:
        pydantic.ValidationError: a value is invalid, or a field without default is missing.
    """
    if isinstance(backend_config_model, BackendConfig):
        model = type(backend_config_model)
        base: dict[str, Any] = backend_config_model.model_dump()
    else:
        model = backend_config_model
        base = {}
    merged = _resolve_configs(backend_kwargs, base)
    _warn_unknown_keys(model, merged)
    return model.model_validate(merged)


def _warn_unknown_keys(model: type[BackendConfig], values: Mapping[str, Any]) -> None:
    """Log one warning per key that ``model`` has no field for (it is ignored, as in 0.4.x)."""
    if model.model_config.get("extra") == "allow":
        return
    fields = list(model.model_fields)
    for key in values:
        if key in model.model_fields:
            continue
        close = difflib.get_close_matches(str(key), fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        _logger.warning(
            "Unknown backend config key {key!r} for {model} is ignored{hint}",
            event="backend_config_key_unknown",
            key=key,
            model=model.__name__,
            hint=hint,
            closest=close[0] if close else None,
        )

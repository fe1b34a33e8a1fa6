"""How a settings field is spelled as a flag and as an environment variable, and the one-line
errors that name it."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError as _PydanticSettingsError

from worker.errors import SettingsError

__all__ = [
    "ENV_PREFIX",
    "build_settings",
    "describe_setting",
    "env_name",
    "flag_name",
    "json_object",
]

_Model = TypeVar("_Model", bound=BaseModel)

ENV_PREFIX = "PACKFLOW_"

#: Flags not spelled after their field: a repeatable flag names one item.
_FLAGS = {"kafka_options": "--kafka-option"}


def flag_name(field: str) -> str:
    """The command-line flag of a settings field: ``max_batch_size`` -> ``--max-batch-size``."""
    return _FLAGS.get(field) or "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    """The environment variable of a settings field: ``delivery`` -> ``PACKFLOW_DELIVERY``."""
    return f"{ENV_PREFIX}{field.upper()}"


def describe_setting(field: str) -> str:
    """``--flag / PACKFLOW_VARIABLE``: how an error names a setting."""
    return f"{flag_name(field)} / {env_name(field)}"


def json_object(value: Any) -> Any:
    """``value`` parsed when it is JSON text (empty: ``{}``); ``ValueError`` if not an object."""
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value or b"{}")
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object, got {type(value).__name__}")
    return value


def build_settings(model: type[_Model], secrets: tuple[str, ...], **flags: Any) -> _Model:
    """``model(**flags)`` (with the environment, for a settings class), or one
    :class:`SettingsError` line naming the offending flag and variable; the values of the
    ``secrets`` fields are never shown."""
    try:
        return model(**flags)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:
            raise SettingsError(f"invalid settings: {message}") from None
        field = loc[0]
        if error["type"] == "missing":
            raise SettingsError(f"missing setting {describe_setting(field)}") from None
        value = error.get("input")
        plain = isinstance(value, str | int | float) and field not in secrets
        shown = f" (got {value!r})" if plain else ""
        where = describe_setting(field)
        raise SettingsError(f"invalid setting {where}: {message}{shown}") from None
    except _PydanticSettingsError as exc:
        raise SettingsError(f"invalid settings: {exc}") from None

"""Turn model outputs into JSON-native Python values and records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from packflow.utils.normalize.base import TypeConversionHandler
from packflow.utils.normalize.handlers import (
    NumpyTypeHandler,
    PandasDataFrameHandler,
    PandasSeriesHandler,
    PillowImageHandler,
    TorchScalarHandler,
    TorchTensorHandler,
)

__all__ = ["ensure_native_types", "ensure_valid_output"]

_NATIVE_SCALARS = (int, float, str, bool, type(None))

# Most frequently met first; each is consulted only once its library is imported.
_ALL_HANDLERS: tuple[TypeConversionHandler, ...] = (
    NumpyTypeHandler(),
    PandasSeriesHandler(),
    PandasDataFrameHandler(),
    TorchScalarHandler(),
    TorchTensorHandler(),
    PillowImageHandler(),
)


def ensure_native_types(obj: Any) -> Any:
    """Return ``obj`` with every value converted to a JSON-native Python type.

    Native scalars pass as they are; numpy, pandas, torch and PIL values go through their
    handler; dicts are converted value by value and lists, tuples and sets become lists.

    Raises:
        TypeError: a value of an unsupported type (named in the message).
    """
    if isinstance(obj, _NATIVE_SCALARS):
        return obj
    for handler in _ALL_HANDLERS:
        if handler.loaded_module() is not None and handler.is_type(obj):
            return handler.convert(obj)
    if isinstance(obj, dict):
        return {key: ensure_native_types(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [ensure_native_types(value) for value in obj]
    raise TypeError(
        f'Returned type "{type(obj)}" is not supported. '
        "Please convert this object to a native Python type in your app."
    )


def ensure_valid_output(output: Iterable[Any], parent_key: str = "output") -> list[dict[str, Any]]:
    """Coerce model outputs to records of JSON-native values.

    Each item is converted with :func:`ensure_native_types`; an item that is not a dict is
    wrapped as ``{parent_key: item}`` (a one-element list is unwrapped first).
    """
    valid: list[dict[str, Any]] = []
    for item in output:
        value = ensure_native_types(item)
        if not isinstance(value, dict):
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            value = {parent_key: value}
        valid.append(value)
    return valid

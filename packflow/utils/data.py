"""Record helpers: flattening, nested-field access and conversion to ``numpy`` arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from packflow.utils._paths import MISSING, FieldPath

__all__ = [
    "check_delimiter_collisions",
    "flatten_dict",
    "flatten_records",
    "get_nested_field",
    "get_nested_field_direct",
    "records_to_ndarray",
    "set_nested_field_direct",
    "unflatten_dict",
]


def check_delimiter_collisions(obj: dict[str, Any], delimiter: str, path: str = "") -> list[str]:
    """Return the paths of every key, at any dict depth, that contains ``delimiter``.

    Example:
        >>> check_delimiter_collisions({"a.b": 1, "c": {"d.e": 2}}, ".")
        ['a.b', 'c.d.e']
    """
    collisions: list[str] = []
    for key, value in obj.items():
        key_path = f"{path}{delimiter}{key}" if path else str(key)
        if isinstance(key, str) and delimiter in key:
            collisions.append(key_path)
        if isinstance(value, dict):
            collisions.extend(check_delimiter_collisions(value, delimiter, key_path))
    return collisions


def flatten_dict(
    obj: dict[str, Any], delimiter: str = ".", flatten_lists: bool = False
) -> dict[str, Any]:
    """Flatten nested dicts into ``"a.b"`` keys (and lists into ``"a.0"`` with ``flatten_lists``).

    Empty dicts and lists are kept as values. Two paths that flatten to the same key (e.g.
    ``{"a.b": 1, "a": {"b": 2}}``) raise ``ValueError`` naming the key.

    Raises:
        TypeError: ``obj`` is not a dict.
        ValueError: two different paths flatten to the same key.
    """
    if not isinstance(obj, dict):
        raise TypeError(
            f"Value for `obj` must be a dictionary-like object. Received type: {type(obj)}"
        )
    flat: dict[str, Any] = {}
    _flatten_into(flat, obj, None, delimiter, flatten_lists)
    return flat


def _flatten_into(
    flat: dict[str, Any],
    value: Any,
    prefix: str | None,
    delimiter: str,
    flatten_lists: bool,
) -> None:
    if isinstance(value, dict) and (value or prefix is None):
        items: Any = value.items()
    elif flatten_lists and isinstance(value, list) and value:
        items = enumerate(value)
    else:
        if prefix in flat:
            raise ValueError(f"duplicated key '{prefix}' when flattening with '{delimiter}'")
        flat[prefix] = value  # type: ignore[index]
        return
    for key, child in items:
        child_key = key if prefix is None else f"{prefix}{delimiter}{key}"
        _flatten_into(flat, child, child_key, delimiter, flatten_lists)


def unflatten_dict(obj: dict[str, Any], delimiter: str = ".") -> dict[str, Any]:
    """Inverse of :func:`flatten_dict` (without ``flatten_lists``): split keys into nested dicts.

    Raises:
        TypeError: ``obj`` is not a dict.
        ValueError: a key is both a value and a parent (``{"a": 1, "a.b": 2}``).
    """
    if not isinstance(obj, dict):
        raise TypeError(f"Value for `obj` must be a dict. Received type: {type(obj)}")
    nested: dict[str, Any] = {}
    for key, value in obj.items():
        parts = key.split(delimiter) if isinstance(key, str) else [key]
        current = nested
        for depth, part in enumerate(parts[:-1]):
            child = current.setdefault(part, {})
            if not isinstance(child, dict):
                where = delimiter.join(parts[: depth + 1])
                raise ValueError(f"key '{key}' conflicts with the value at '{where}'")
            current = child
        if parts[-1] in current:
            raise ValueError(f"key '{key}' conflicts with another key")
        current[parts[-1]] = value
    return nested


def flatten_records(
    records: list[dict[str, Any]], delimiter: str = ".", flatten_lists: bool = False
) -> list[dict[str, Any]]:
    """Apply :func:`flatten_dict` to every record.

    Raises:
        TypeError: ``records`` is not a list, or a record is not a dict (its index is named).
    """
    if not isinstance(records, list):
        raise TypeError(f"Value for `records` must be a list. Received type: {type(records)}")
    flattened = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise TypeError(f"record {index} is not a dict. Received type: {type(record)}")
        flattened.append(flatten_dict(record, delimiter, flatten_lists))
    return flattened


def get_nested_field(obj: dict[str, Any], field: str, delimiter: str | None = None) -> Any:
    """Value of ``field`` in ``obj``: the literal key first, else the flattened path.

    Example: ``get_nested_field({"foo": {"bar": 5}}, "foo.bar") == 5``. Returns ``None``
    when absent; a non-empty sub-dict is not a value (``None``); lists are not indexed.

    Raises:
        ValueError: the path matches two keys (one of them contains the delimiter).
    """
    value = FieldPath(field, delimiter or ".").lenient(obj)
    return None if value is MISSING else value


def get_nested_field_direct(obj: dict[str, Any], field: str, delimiter: str = ".") -> Any:
    """Value at ``field`` walking dicts: the literal top-level key first, else split on
    ``delimiter``. Returns ``None`` when absent; may return a sub-dict; lists are not indexed.
    """
    value = FieldPath(field, delimiter).direct(obj)
    return None if value is MISSING else value


def set_nested_field_direct(
    obj: dict[str, Any], field: str, value: Any, delimiter: str = "."
) -> None:
    """Set ``field`` (split on ``delimiter``) in ``obj`` in place, creating missing dicts.

    Does nothing when a non-dict value sits on the path.
    """
    parts = field.split(delimiter)
    current = obj
    for part in parts[:-1]:
        child = current.get(part, MISSING)
        if child is MISSING:
            child = current[part] = {}
        elif not isinstance(child, dict):
            return
        current = child
    current[parts[-1]] = value


def records_to_ndarray(
    records: list[dict[str, Any]],
    feature_names: list[str],
    dtype: Any = None,
    delimiter: str | None = None,
) -> np.ndarray[Any, Any]:
    """Build a 2-D array, one row per record and one column per feature.

    Cells come from :func:`get_nested_field` (``None`` when absent, which makes the array's
    dtype ``object``). An empty list gives an array of shape ``(0,)``.

    Raises:
        ValueError: ``records`` is not a list, or a record is not a dict (its index is named).
    """
    if not isinstance(records, list):
        raise ValueError(
            f"Value for `records` must be a list of dictionaries. Received type: {type(records)}"
        )
    paths = [FieldPath(name, delimiter or ".") for name in feature_names]
    rows: list[list[Any]] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(
                f"Value at index {index} is not a dictionary. Received type: {type(record)}"
            )
        row = []
        for path in paths:
            value = path.lenient(record)
            row.append(None if value is MISSING else value)
        rows.append(row)
    return np.array(rows, dtype=dtype)

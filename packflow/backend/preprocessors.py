"""Built-in preprocessors: shape raw records before ``transform_inputs``/``execute``.

* :class:`PassthroughPreprocessor` returns the records untouched.
* :class:`RecordsPreprocessor` renames, filters/orders and optionally flattens fields. With
  none of ``rename_fields``, ``feature_names`` or ``flatten_nested_inputs`` set it returns the
  caller's list itself (no copy).
* :class:`NumpyPreprocessor` builds a 2-D ``ndarray``: one row per record, one column per
  feature.

Paths are compiled once, when the preprocessor is built; a call walks each record only along
the requested paths (it never flattens a whole record unless ``flatten_nested_inputs`` is set
without ``feature_names``, where the flattened record *is* the output).

Semantics chosen where packflow 0.4.x was unclear (see ``RecordsPreprocessor``):

* a field that is absent is left out of the output; a field present with the value ``None``
  is kept (0.4.x dropped it).
* without ``feature_names``, ``rename_fields`` *moves* a field: the old key disappears and the
  new one holds its value, beside the record's other fields (0.4.x kept the old key and let
  an original field overwrite a renamed one).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from packflow.backend._compiled import compile_select_direct
from packflow.backend.configuration import BackendConfig, InputFormats
from packflow.exceptions import PreprocessorInitError, PreprocessorRuntimeError
from packflow.utils._paths import MISSING, AmbiguousPathError, FieldPath
from packflow.utils.data import flatten_dict

__all__ = [
    "NumpyPreprocessor",
    "PassthroughPreprocessor",
    "Preprocessor",
    "RecordsPreprocessor",
    "get_preprocessor",
]

Records = list[dict[str, Any]]
_NO_IDS: set[int] = set()
_T = TypeVar("_T")


def get_preprocessor(config: BackendConfig) -> Preprocessor:
    """Build the preprocessor named by ``config.input_format``."""
    if config.input_format == InputFormats.RECORDS:
        return RecordsPreprocessor(config)
    if config.input_format == InputFormats.NUMPY:
        return NumpyPreprocessor(config)
    return PassthroughPreprocessor(config)


class Preprocessor(ABC):
    """Base class of the preprocessors: ``resolve()`` once, then ``process()`` per call.

    ``passthrough`` is true when ``process`` returns its input itself, so a caller may skip
    the call.
    """

    passthrough: bool = False

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.resolve()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def __call__(self, raw_inputs: Records) -> Any:
        """Run :meth:`process`; failures raise ``PreprocessorRuntimeError`` (chained)."""
        try:
            return self.process(raw_inputs)
        except PreprocessorRuntimeError:
            raise
        except Exception as exc:
            raise _wrapped_error(exc) from exc

    @abstractmethod
    def resolve(self) -> None:
        """Check the configuration and prepare whatever ``process`` needs."""

    @abstractmethod
    def process(self, raw_inputs: Records) -> Any:
        """Transform a batch of records."""


class PassthroughPreprocessor(Preprocessor):
    """Returns its input untouched."""

    passthrough = True

    def resolve(self) -> None:
        """Nothing to prepare."""

    def process(self, raw_inputs: Records) -> Records:
        """Return ``raw_inputs`` itself."""
        return raw_inputs


def _wrapped_error(exc: Exception) -> PreprocessorRuntimeError:
    """The error a preprocessing failure that is not a ``PreprocessorRuntimeError`` becomes."""
    return PreprocessorRuntimeError(
        f"Failed to preprocess inputs with the following exception: {exc}"
    )


def _record_error(index: int, exc: Exception) -> PreprocessorRuntimeError:
    field = exc.key_path if isinstance(exc, AmbiguousPathError) else None
    return PreprocessorRuntimeError(
        f"Failed to preprocess inputs: record {index}: {exc}", record_index=index, field=field
    )


def _not_a_record(index: int, record: Any) -> PreprocessorRuntimeError:
    return PreprocessorRuntimeError(
        f"Failed to preprocess inputs: record {index} is not a dict (got {type(record).__name__})",
        record_index=index,
    )


def _map_records(records: Records, transform: Callable[[dict[str, Any]], _T]) -> list[_T]:
    """Apply ``transform`` to each record of ``records`` (a list of dicts), in order.

    Raises ``PreprocessorRuntimeError``: ``records`` is not a list, or naming the record
    (``record_index``) that is not a dict or that ``transform`` failed on.
    """
    if not isinstance(records, list):
        raise PreprocessorRuntimeError(
            f"Failed to preprocess inputs: expected a list of records, got {type(records).__name__}"
        )
    out: list[_T] = []
    append = out.append
    index = 0
    try:
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise _not_a_record(index, record)
            append(transform(record))
    except PreprocessorRuntimeError:
        raise
    except Exception as exc:
        raise _record_error(index, exc) from exc
    return out


def _owned_parent(
    out: dict[str, Any], parts: tuple[str, ...], owned: set[int], create: bool
) -> dict[str, Any] | None:
    """The dict of ``out`` that holds ``parts[-1]``, or ``None`` if there is none.

    Each dict on the way that ``out`` does not own (``owned`` holds the ids of the dicts
    created for this output) is replaced by a copy, so the caller's nested dicts are never
    written to. A missing dict is created if ``create``; a non-dict on the way means none.
    """
    current = out
    for part in parts[:-1]:
        child = current.get(part, MISSING)
        if child is MISSING and create:
            child = current[part] = {}
            owned.add(id(child))
        elif not isinstance(child, dict):
            return None
        elif id(child) not in owned:
            child = current[part] = dict(child)
            owned.add(id(child))
        current = child
    return current


def _set_owned(out: dict[str, Any], parts: tuple[str, ...], value: Any, owned: set[int]) -> None:
    """Set ``parts`` in ``out`` without writing to dicts it does not own (see ``_owned_parent``)."""
    parent = _owned_parent(out, parts, owned, create=True)
    if parent is not None:
        parent[parts[-1]] = value


def _delete_owned(out: dict[str, Any], parts: tuple[str, ...], owned: set[int]) -> None:
    """Delete ``parts`` from ``out`` without writing to dicts it does not own."""
    parent = _owned_parent(out, parts, owned, create=False)
    if parent is not None:
        parent.pop(parts[-1], None)


class _Field:
    """One output field: where it is read from and how it is written."""

    __slots__ = ("name", "skip_if_set", "source", "target")

    def __init__(self, source: FieldPath, target: FieldPath, skip_if_set: bool) -> None:
        self.source = source
        # ``target.nested`` -> written as nested dicts (records mode without flattening).
        self.target = target
        self.name = target.name  # the output key
        # Skip the feature when its path is already present in the output (a rename or an
        # earlier feature sharing its path may have written it).
        self.skip_if_set = skip_if_set


class RecordsPreprocessor(Preprocessor):
    """Rename, filter/order and optionally flatten the fields of each record.

    * ``rename_fields`` ``{old: new}``: ``old`` may be a nested path (``"a.b"``); a ``new``
      containing the delimiter is written as nested dicts (flat key when flattening).
    * ``feature_names``: the output holds the renamed fields, then each feature in order
      (features are names after renaming; a feature whose path a rename or an earlier
      feature already wrote is not read again, as in 0.4.x). Absent fields are left out.
    * ``flatten_nested_inputs``: fields are looked up in (and, without ``feature_names``, the
      output is) the flattened record, with lists flattened only if ``flatten_lists``.
    * Without flattening, a key that contains the delimiter and makes a requested path
      ambiguous (``{"a.b": 1, "a": {"b": 2}}`` for ``"a.b"``) raises an error naming the
      record and the key, unless ``ignore_delimiter_collisions`` (the literal key then
      wins). Only the requested paths are checked, not every key of the record.

    Errors raise ``PreprocessorRuntimeError`` with ``record_index`` and ``field``.
    """

    def resolve(self) -> None:
        """Compile the field paths; decide passthrough mode."""
        config = self.config
        self.passthrough = not (
            config.rename_fields or config.feature_names or config.flatten_nested_inputs
        )
        if self.passthrough:
            return
        delimiter = config.nested_field_delimiter
        flatten = config.flatten_nested_inputs
        self._flatten_lists = config.flatten_lists
        self._check = not config.ignore_delimiter_collisions
        self._delimiter = delimiter

        self._renames = [
            _Field(FieldPath(old, delimiter), FieldPath(new, delimiter), False)
            for old, new in config.rename_fields.items()
        ]
        # Names written before each feature: the rename targets, then the earlier features.
        written = list(dict.fromkeys(config.rename_fields.values()))
        features: list[_Field] = []
        for name in config.feature_names:
            if name in written and name not in config.rename_fields.values():
                continue  # a repeated feature name
            # As in 0.4.x, a feature whose path is already set in the output (by a rename or
            # an earlier feature sharing its path) is not read again.
            skip = any(_related(name, target, delimiter) for target in written)
            path = FieldPath(name, delimiter)
            features.append(_Field(path, path, skip))
            written.append(name)
        # What feature_names mode writes, in order (a rename never skips).
        self._selection = [*self._renames, *features]
        self._nested_out = not flatten and any(f.target.nested for f in self._selection)
        # One record in, one output record out; ``process`` maps it over the batch.
        self._transform_record: Callable[[dict[str, Any]], dict[str, Any]]
        if config.feature_names and flatten:
            self._transform_record = self._select_flat
        elif config.feature_names:
            compiled = compile_select_direct(
                [(f.source, f.target, f.skip_if_set) for f in self._selection],
                self._check,
                self._nested_out,
            )
            self._transform_record = compiled or self._select_direct
        else:
            self._transform_record = self._move_flat if flatten else self._move_direct

    def __getstate__(self) -> dict[str, Any]:
        # The compiled transform is a generated function that pickle cannot name: ship the
        # configuration and compile again on the other side.
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self.resolve()

    def process(self, raw_inputs: Records) -> Records:
        """Transform ``raw_inputs`` (the list itself is returned in passthrough mode)."""
        if self.passthrough:
            return raw_inputs
        return _map_records(raw_inputs, self._transform_record)

    # -- with feature_names ---------------------------------------------------------------

    def _select_direct(self, record: dict[str, Any]) -> dict[str, Any]:
        check, nested_out = self._check, self._nested_out
        out: dict[str, Any] = {}
        owned: set[int] = {id(out)} if nested_out else _NO_IDS
        for field in self._selection:
            if field.skip_if_set and field.target.direct(out) is not MISSING:
                continue
            value = field.source.direct(record, check)
            if value is not MISSING:
                if nested_out and field.target.nested:
                    _set_owned(out, field.target.parts, value, owned)
                else:
                    out[field.name] = value
        return out

    def _select_flat(self, record: dict[str, Any]) -> dict[str, Any]:
        lists = self._flatten_lists
        out: dict[str, Any] = {}
        for field in self._selection:
            if field.skip_if_set and field.name in out:
                continue
            value = field.source.flat(record, lists)
            if value is not MISSING:
                out[field.name] = value
        return out

    # -- rename_fields only: move fields ----------------------------------------------------

    def _move_direct(self, record: dict[str, Any]) -> dict[str, Any]:
        check = self._check
        found = [
            (f, value)
            for f in self._renames
            if (value := f.source.direct(record, check)) is not MISSING
        ]
        out = dict(record)
        owned = {id(out)}
        for field, _value in found:
            source = field.source
            if not source.nested or source.name in record:
                out.pop(source.name, None)
            else:
                _delete_owned(out, source.parts, owned)
        for field, value in found:
            if field.target.nested:
                _set_owned(out, field.target.parts, value, owned)
            else:
                out[field.name] = value
        return out

    def _move_flat(self, record: dict[str, Any]) -> dict[str, Any]:
        out = flatten_dict(record, self._delimiter, self._flatten_lists)
        found = [
            (f, value)
            for f in self._renames
            if (value := out.get(f.source.name, MISSING)) is not MISSING
        ]
        for field, _value in found:
            del out[field.source.name]
        for field, value in found:
            out[field.name] = value
        return out


def _related(name: str, target: str, delimiter: str) -> bool:
    """True if one of the two paths equals or contains the other."""
    return (
        name == target or target.startswith(name + delimiter) or name.startswith(target + delimiter)
    )


_NUMERIC_KINDS = frozenset("biuf")


class NumpyPreprocessor(Preprocessor):
    """Records -> 2-D ``numpy.ndarray`` (records x ``feature_names``), dtype inferred.

    ``rename_fields`` maps input names to feature names, so a feature is read from the input
    field renamed to it. A missing or non-numeric value raises ``PreprocessorRuntimeError``
    naming the record index, the feature, the field path and the value's type.
    ``flatten_*`` and ``ignore_delimiter_collisions`` do not apply.
    """

    def resolve(self) -> None:
        """Require ``feature_names``; compile the field paths."""
        config = self.config
        if not config.feature_names:
            raise PreprocessorInitError(
                "The numpy preprocessor requires `feature_names` to be defined. "
                f"Received config: {config!r}"
            )
        reverse = {new: old for old, new in config.rename_fields.items()}
        delimiter = config.nested_field_delimiter
        self.features = [reverse.get(name, name) for name in config.feature_names]
        self._paths = [FieldPath(field, delimiter) for field in self.features]

    def process(self, raw_inputs: Records) -> np.ndarray[Any, Any]:
        """Build the array; shape ``(len(raw_inputs), len(feature_names))``."""
        paths = self._paths
        rows = _map_records(raw_inputs, lambda record: [path.lenient(record) for path in paths])
        if not rows:
            return np.empty((0, len(paths)))
        try:
            array = np.array(rows)
        except (ValueError, TypeError):
            array = None
        if array is None or array.ndim != 2 or array.dtype.kind not in _NUMERIC_KINDS:
            raise self._first_bad_cell(raw_inputs, rows)
        return array

    def _first_bad_cell(self, records: Records, rows: list[list[Any]]) -> PreprocessorRuntimeError:
        for index, row in enumerate(rows):
            for column, value in enumerate(row):
                if value is MISSING:
                    # A sub-dict is not a leaf value; say what is there instead.
                    value = self._paths[column].direct(records[index])
                if value is MISSING:
                    problem = "is missing"
                elif isinstance(value, bool | int | float | np.number) and not isinstance(
                    value, np.complexfloating
                ):
                    continue
                else:
                    problem = f"is not a number (got {type(value).__name__}: {value!r:.60})"
                feature = self.config.feature_names[column]
                field = self.features[column]
                where = f"feature '{feature}'" + (
                    f" (input field '{field}')" if field != feature else ""
                )
                return PreprocessorRuntimeError(
                    f"Failed to preprocess inputs: record {index}, {where} {problem}",
                    record_index=index,
                    field=field,
                )
        return PreprocessorRuntimeError(  # pragma: no cover - np.array rejected valid cells
            "Failed to preprocess inputs: numpy could not build a numeric 2-D array"
        )

"""Built-in preprocessors: shape raw records before ``transform_inputs``/``execute``.

* :class:`PassthroughPreprocessor` returns the records untouched.
* :class:`RecordsPreprocessor` renames, filters/orders and optionally flattens fields. With
  none of ``rename_fields``, ``feature_names`` or ``flatten_nested_inputs`` set it returns the
  caller's list itself (no copy).
* :class:`NumpyPreprocessor` builds an ``ndarray``: one row per record, one column per
  feature, its dtype inferred as 0.4.1 does, or strict with ``numpy_dtype``.

The rule is packflow 0.4.1's results for the same inputs (values, keys, key order, dtypes,
shapes): ``tests/data/preprocessors_0_4_1.json`` is a golden corpus of them, written by
``scripts/preprocessor_corpus.py`` from the published release, and the tests compare with
it. So, as there: an absent field and a field holding ``None`` are left out of records;
without ``feature_names`` a renamed field keeps its original beside the new name; a nested
path requested without flattening makes any key containing the delimiter an error. We differ
where 0.4.1 raises (our errors name the record and field) and in speed: paths are compiled
once, records are walked along the requested paths instead of flattened (a record is
flattened only where 0.4.1's result depends on it), and the caller's records are never
written to.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import orjson

from packflow.backend._compiled import CompiledSelect, compile_select_direct
from packflow.backend.configuration import BackendConfig, InputFormats
from packflow.exceptions import PreprocessorInitError, PreprocessorRuntimeError
from packflow.logger import logger as _logger
from packflow.utils._grammar import with_article
from packflow.utils._paths import MISSING, AmbiguousPathError, FieldPath
from packflow.utils.data import check_delimiter_collisions, flatten_dict

__all__ = [
    "NumpyPreprocessor",
    "PassthroughPreprocessor",
    "Preprocessor",
    "RecordsPreprocessor",
    "get_preprocessor",
]

Records = list[dict[str, Any]]
_DICTS = frozenset({dict})
_T = TypeVar("_T")


def get_preprocessor(config: BackendConfig) -> Preprocessor:
    """Build the preprocessor named by ``config.input_format``.

    The format may also be a plain string (a config subclass declaring ``input_format: str =
    "numpy"``); a value that names no format gives the passthrough preprocessor, as in 0.4.x,
    with a warning.
    """
    fmt: Any = config.input_format
    if not isinstance(fmt, InputFormats):
        try:
            fmt = InputFormats(fmt)
        except ValueError:
            _logger.warning(
                "input_format {value!r} names no preprocessor (expected one of {known}); "
                "inputs pass through unchanged",
                event="input_format_unknown",
                value=fmt,
                known=[f.value for f in InputFormats],
            )
            fmt = InputFormats.PASSTHROUGH
    if fmt is InputFormats.RECORDS:
        return RecordsPreprocessor(config)
    if fmt is InputFormats.NUMPY:
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

    def failure_hint(self, data: Any) -> str | None:
        """What to add to the error of a later step that failed on ``data`` (this output)."""
        return None

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
        f"Failed to preprocess inputs: record {index} is not a dict (got "
        f"{with_article(type(record).__name__)})",
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
    if set(map(type, records)) <= _DICTS:  # the usual case: one C-level map
        try:
            return list(map(transform, records))
        except PreprocessorRuntimeError:
            raise
        except Exception as exc:
            raise _record_error(_failing_index(records, transform), exc) from exc
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


def _failing_index(records: Records, transform: Callable[[dict[str, Any]], Any]) -> int:
    """The index of the first record ``transform`` raises on (transforms are pure)."""
    for index, record in enumerate(records):
        try:
            transform(record)
        except Exception:
            return index
    return 0


def _owned_parent(
    out: dict[str, Any], parts: tuple[str, ...], owned: set[int]
) -> dict[str, Any] | None:
    """The dict of ``out`` that holds ``parts[-1]`` (missing dicts created), or ``None``.

    As ``set_nested_field_direct``: a non-dict on the way means none. Each dict on the way
    that ``out`` does not own (``owned`` holds the ids of the dicts created for this output)
    is replaced by a copy, so the caller's nested dicts are never written to.
    """
    current = out
    for part in parts[:-1]:
        child = current.get(part, MISSING)
        if child is MISSING:
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
    """``set_nested_field_direct`` without writing to dicts ``out`` does not own."""
    parent = _owned_parent(out, parts, owned)
    if parent is not None:
        parent[parts[-1]] = value


_is_dict = dict.__instancecheck__
_KEY_SEPARATOR = "\x1f"


def _has_delimiter_key(obj: dict[str, Any], delimiter: str, into_lists: bool) -> bool:
    """True if a key of ``obj``, or of a dict nested in it, contains ``delimiter``.

    Lists are searched for dicts only if ``into_lists`` (flattening enumerates them).
    """
    if not into_lists and _KEY_SEPARATOR not in delimiter:
        # Every record is scanned on every call, so gather the keys of all nested dicts with
        # C-level iteration and search them joined, once.
        keys = [*obj]
        stack = [*filter(_is_dict, obj.values())]
        while stack:
            child = stack.pop()
            keys += child
            stack += filter(_is_dict, child.values())
        try:
            return delimiter in _KEY_SEPARATOR.join(keys)
        except TypeError:  # a key that is not a str: search key by key
            pass
    return _has_delimiter_key_slow(obj, delimiter, into_lists)


def _has_delimiter_key_slow(obj: dict[str, Any], delimiter: str, into_lists: bool) -> bool:
    for key, value in obj.items():
        if isinstance(key, str) and delimiter in key:
            return True
        if isinstance(value, dict):
            if value and _has_delimiter_key_slow(value, delimiter, into_lists):
                return True
        elif into_lists and isinstance(value, list) and _list_has_delimiter_key(value, delimiter):
            return True
    return False


def _list_has_delimiter_key(items: list[Any], delimiter: str) -> bool:
    for item in items:
        if isinstance(item, dict):
            if _has_delimiter_key_slow(item, delimiter, True):
                return True
        elif isinstance(item, list) and _list_has_delimiter_key(item, delimiter):
            return True
    return False


class _DelimiterKeys:
    """Tells cheaply whether any key in a batch contains the delimiter.

    0.4.1's results depend on that for every record (its collision check, its flattening),
    so it is asked on every call: instead of walking each record's dicts in Python, the
    whole batch is serialised once with orjson and searched once for a key (a JSON string
    followed by ``:``) holding the delimiter. A string followed by ``":`` can only be a key,
    and a number is never followed by a quote, so without escapes in the text a miss is
    exact. Anything else (a value orjson cannot serialise, an escape, a hit) answers
    "maybe", and the caller checks record by record.
    """

    __slots__ = ("_pattern",)

    def __init__(self, delimiter: str) -> None:
        self._pattern = (
            None
            if '"' in delimiter or "\\" in delimiter
            # possessive: a run of non-quotes never gives characters back (no backtracking)
            else re.compile(re.escape(delimiter.encode()) + rb'[^"\\]*+":')
        )

    def none_in(self, records: Any) -> bool:
        """True only if no dict key anywhere in ``records`` (lists included) has the delimiter."""
        if self._pattern is None or not isinstance(records, list):
            return False
        try:
            text = orjson.dumps(records)
        except TypeError:  # orjson.JSONEncodeError: a value or key JSON cannot hold
            return False
        return b"\\" not in text and self._pattern.search(text) is None


def _collision_error(index: int, collisions: list[str], delimiter: str) -> PreprocessorRuntimeError:
    return PreprocessorRuntimeError(
        f"Keys containing the delimiter '{delimiter}' were found: {collisions} (record "
        f"{index}). This can cause ambiguity when using nested path access. Either rename "
        "these keys or set ignore_delimiter_collisions=True to bypass this check.",
        record_index=index,
        field=collisions[0],
    )


class RecordsPreprocessor(Preprocessor):
    """Rename, filter/order and optionally flatten the fields of each record, as 0.4.1 does.

    * ``rename_fields`` ``{old: new}``: the value at ``old`` (a nested path may reach into
      dicts) is written at ``new`` (a ``new`` containing the delimiter is written as nested
      dicts, a flat key when flattening).
    * ``feature_names``: the output holds the renamed fields, then each feature in order
      (names after renaming); a feature already present in the output is not read again.
    * No ``feature_names``: the renamed fields, then every original field (the original
      keeps its name beside the new one, and wins when both names are equal).
    * ``flatten_nested_inputs``: fields are looked up in (and, without ``feature_names``, the
      output is) the flattened record, lists flattened only with ``flatten_lists``; two paths
      that flatten to the same key are an error.
    * A field that is absent or ``None`` is left out of the output.
    * Without flattening, when a rename source or a feature is a nested path, a key anywhere
      in a record that contains the delimiter is an error naming the record and the keys
      ("Keys containing the delimiter ..."), unless ``ignore_delimiter_collisions``.

    Errors raise ``PreprocessorRuntimeError`` with ``record_index`` (and ``field`` when known).
    """

    def resolve(self) -> None:
        """Compile the field paths; decide passthrough mode."""
        config = self.config
        self.passthrough = not (
            config.rename_fields or config.feature_names or config.flatten_nested_inputs
        )
        if self.passthrough:
            return
        d = self._delimiter = config.nested_field_delimiter
        self._flatten = config.flatten_nested_inputs
        self._flatten_lists = config.flatten_lists
        uses_nested_paths = any(d in key for key in config.rename_fields) or any(
            d in name for name in config.feature_names
        )
        self._check = (
            uses_nested_paths and not self._flatten and not config.ignore_delimiter_collisions
        )
        # (source path, target path, target written as nested dicts)
        self._renames = [
            (FieldPath(old, d), FieldPath(new, d), not self._flatten and d in new)
            for old, new in config.rename_fields.items()
        ]
        self._features = [
            (FieldPath(name, d), not self._flatten and d in name) for name in config.feature_names
        ]
        self._keys = _DelimiterKeys(d)
        self._transform_record: Callable[[dict[str, Any]], dict[str, Any]]
        self._compiled: CompiledSelect | None = None
        # Flattening with features, lists not flattened, on a batch without keys that hold
        # the delimiter: the flattened value of a path is the leaf its walk reaches.
        self._compiled_flat: CompiledSelect | None = None
        if self._flatten and self._features and not self._flatten_lists:
            self._compiled_flat = compile_select_direct(
                self._renames, self._features, literal_keys=False, leaves_only=True
            )
        if self._flatten:
            self._transform_record = self._flat
        elif self._features:
            # With the collision check on, no record that reaches the transform has a key
            # containing the delimiter: nested paths need not be tried as literal keys.
            self._compiled = compile_select_direct(
                self._renames, self._features, literal_keys=not self._check
            )
            self._transform_record = self._compiled.select if self._compiled else self._direct
        else:
            self._transform_record = self._direct

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
        clean = False
        if self._check or self._flatten:
            clean = self._keys.none_in(raw_inputs)
            if self._check and not clean and isinstance(raw_inputs, list):
                self._check_collisions(raw_inputs)
        if self._flatten and clean and self._features:
            if self._compiled_flat is not None and set(map(type, raw_inputs)) <= _DICTS:
                try:
                    return self._compiled_flat.select_all(raw_inputs)
                except Exception:  # a dict subclass inside misbehaved: the loop names it
                    return _map_records(raw_inputs, self._flat_without_collisions)
            return _map_records(raw_inputs, self._flat_without_collisions)
        compiled = self._compiled
        if (
            compiled is not None
            and isinstance(raw_inputs, list)
            and set(map(type, raw_inputs)) <= _DICTS
        ):
            try:
                return compiled.select_all(raw_inputs)
            except Exception:  # a dict subclass inside misbehaved: the loop names it
                return _map_records(raw_inputs, self._direct)
        return _map_records(raw_inputs, self._transform_record)

    def _check_collisions(self, records: Records) -> None:
        d = self._delimiter
        for index, record in enumerate(records):
            if isinstance(record, dict) and _has_delimiter_key(record, d, False):
                raise _collision_error(index, check_delimiter_collisions(record, d), d)

    def _direct(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        owned: set[int] = {id(out)}
        for source, target, nested in self._renames:
            value = source.direct(record)
            if value is not MISSING and value is not None:
                if nested:
                    _set_owned(out, target.parts, value, owned)
                else:
                    out[target.name] = value
        if not self._features:
            out.update(record)
            return out
        for path, nested in self._features:
            existing = path.direct(out)
            if existing is not MISSING and existing is not None:
                continue
            value = path.direct(record)
            if value is not MISSING and value is not None:
                if nested:
                    _set_owned(out, path.parts, value, owned)
                else:
                    out[path.name] = value
        return out

    def _flat(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._flat_impl(record, True)

    def _flat_without_collisions(self, record: dict[str, Any]) -> dict[str, Any]:
        # No key of the batch contains the delimiter: flattening could not collide.
        return self._flat_impl(record, False)

    def _flat_impl(self, record: dict[str, Any], may_collide: bool) -> dict[str, Any]:
        lists = self._flatten_lists
        flat: dict[str, Any] | None = None
        whole = not self._features or (
            may_collide and _has_delimiter_key(record, self._delimiter, lists)
        )
        if whole:
            # The whole flattened record is needed (it is the output, or keys containing the
            # delimiter may collide: flattening raises then).
            flat = flatten_dict(record, self._delimiter, lists)
        out: dict[str, Any] = {}
        for source, target, _nested in self._renames:
            value = flat.get(source.name) if flat is not None else source.flat(record, lists)
            if value is not MISSING and value is not None:
                out[target.name] = value
        if not self._features:
            assert flat is not None
            out.update(flat)
            return out
        for path, _nested in self._features:
            if path.name in out:
                continue
            value = flat.get(path.name) if flat is not None else path.flat(record, lists)
            if value is not MISSING and value is not None:
                out[path.name] = value
        return out


_NUMERIC_KINDS = frozenset("biuf")


class NumpyPreprocessor(Preprocessor):
    """Records -> ``numpy.ndarray``, one row per record, one column per feature, as 0.4.1 does.

    ``rename_fields`` maps input names to feature names, so a feature is read from the input
    field renamed to it. A cell is the literal key first, else the value the path has in the
    flattened record (lists are not indexed; a non-empty sub-dict is not a value), ``None``
    when absent. The array is ``numpy.array(rows)``: its dtype is inferred, a "loosely-typed
    ndarray" (strings give a string array; a missing feature or a ``None`` gives an ``object``
    array holding ``None``, to impute in ``transform_inputs``); an empty batch gives shape
    ``(0,)``. ``flatten_*`` and ``ignore_delimiter_collisions`` do not apply.

    ``numpy_dtype`` (e.g. ``"float32"``) opts into a strict numeric array of that dtype,
    shape ``(len(records), len(feature_names))`` even when empty: a missing, ``None`` or
    non-numeric cell raises ``PreprocessorRuntimeError`` naming the record index, the field
    path and the value's type.
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
        self._delimiter = config.nested_field_delimiter
        self.features = [reverse.get(name, name) for name in config.feature_names]
        self._paths = [FieldPath(field, self._delimiter) for field in self.features]
        self._keys = _DelimiterKeys(self._delimiter)
        self._dtype = getattr(config, "numpy_dtype", None)
        if self._dtype is not None:
            try:
                kind = np.dtype(self._dtype).kind
            except TypeError as exc:
                raise PreprocessorInitError(
                    f"numpy_dtype {self._dtype!r} is not a numpy dtype: {exc}"
                ) from exc
            if kind not in _NUMERIC_KINDS:
                raise PreprocessorInitError(
                    f"numpy_dtype {self._dtype!r} is not numeric (expected e.g. 'float32')"
                )

    def process(self, raw_inputs: Records) -> np.ndarray[Any, Any]:
        """Build the array (see the class docstring for its dtype and shape)."""
        if self._keys.none_in(raw_inputs):
            rows = _map_records(raw_inputs, self._row_without_collisions)
        else:
            rows = _map_records(raw_inputs, self._row)
        if self._dtype is not None:
            return self._strict(raw_inputs, rows)
        return np.array(rows)

    def _row_without_collisions(self, record: dict[str, Any]) -> list[Any]:
        # No key of the batch contains the delimiter: walking the paths is exact.
        row: list[Any] = []
        for path in self._paths:
            name = path.name
            if name in record:
                row.append(record[name])
            else:
                value = path.flat(record)
                row.append(None if value is MISSING else value)
        return row

    def _row(self, record: dict[str, Any]) -> list[Any]:
        row: list[Any] = []
        # The flattened record, False while not needed, None until decided: 0.4.1 flattens
        # the record for a feature that is not a literal key, where keys containing the
        # delimiter may make two paths collide (an error); without them, walking the path
        # gives the same value without flattening.
        flat: dict[str, Any] | bool | None = None
        for path in self._paths:
            name = path.name
            if name in record:
                row.append(record[name])
                continue
            if flat is None:
                flat = _has_delimiter_key(record, self._delimiter, False) and flatten_dict(
                    record, self._delimiter
                )
            if flat is False or flat is True:
                value = path.flat(record)
                row.append(None if value is MISSING else value)
            else:
                row.append(flat.get(name))
        return row

    def failure_hint(self, data: Any) -> str | None:
        """Name the cells holding ``None`` when ``data`` is an object array built here."""
        if not (isinstance(data, np.ndarray) and data.dtype == object and data.ndim == 2):
            return None
        if data.shape[1] != len(self.features):
            return None
        cells = [
            (r, c) for r, row in enumerate(data.tolist()) for c, v in enumerate(row) if v is None
        ]
        if not cells:
            return None
        shown = ", ".join(f"record {r} field '{self.features[c]}'" for r, c in cells[:5])
        more = f" and {len(cells) - 5} more" if len(cells) > 5 else ""
        return (
            "the numpy preprocessor built an object array because values were missing or "
            f"None: {shown}{more}; impute them in transform_inputs, or set numpy_dtype for a "
            "strict numeric array"
        )

    def _strict(self, records: Records, rows: list[list[Any]]) -> np.ndarray[Any, Any]:
        for index, row in enumerate(rows):
            for column, value in enumerate(row):
                if isinstance(value, bool | int | float | np.number) and not isinstance(
                    value, np.complexfloating
                ):
                    continue
                field = self.features[column]
                if value is None:
                    # None in the row: absent, a stored None, or a sub-dict (not a value).
                    value = self._paths[column].direct(records[index])
                if value is MISSING:
                    problem = "is missing"
                elif value is None:
                    problem = "is None"
                else:
                    problem = (
                        f"is not a number (got {with_article(type(value).__name__)}: {value!r:.60})"
                    )
                raise PreprocessorRuntimeError(
                    f"Failed to preprocess inputs: record {index}, field '{field}' {problem}; "
                    f"numpy_dtype={self._dtype!r} needs a number in every cell",
                    record_index=index,
                    field=field,
                )
        if not rows:
            return np.empty((0, len(self._paths)), dtype=self._dtype)
        return np.array(rows, dtype=self._dtype)

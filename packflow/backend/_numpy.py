"""The numpy preprocessor: records -> a 2-D ``numpy.ndarray``, one column per feature."""

from __future__ import annotations

from typing import Any

import numpy as np

from packflow.backend._delimiters import DelimiterKeys, has_delimiter_key
from packflow.backend._preprocessor_base import Preprocessor, Records, map_records
from packflow.exceptions import PreprocessorInitError, PreprocessorRuntimeError
from packflow.utils._grammar import with_article
from packflow.utils._paths import MISSING, FieldPath
from packflow.utils.data import flatten_dict

__all__ = ["NumpyPreprocessor"]

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
        self._keys = DelimiterKeys(self._delimiter)
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
            rows = map_records(raw_inputs, self._row_without_collisions)
        else:
            rows = map_records(raw_inputs, self._row)
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
                flat = has_delimiter_key(record, self._delimiter, False) and flatten_dict(
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

"""Built-in preprocessors: shape raw records before ``transform_inputs``/``execute``.

``get_preprocessor(config)`` picks one by ``config.input_format``:

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
where 0.4.1 raises (our errors name the record and field) and in speed.

This module is the path code written against 0.4.x imports; the preprocessors live in
``_preprocessor_base`` (the base class and the passthrough), ``_records``, ``_numpy``, with
``_delimiters`` (keys holding the delimiter) and ``_compiled`` (the records' hot path).
"""

from __future__ import annotations

from typing import Any

from packflow.backend._numpy import NumpyPreprocessor
from packflow.backend._preprocessor_base import PassthroughPreprocessor, Preprocessor
from packflow.backend._records import RecordsPreprocessor
from packflow.backend.configuration import BackendConfig, InputFormats
from packflow.logger import logger as _logger

__all__ = [
    "NumpyPreprocessor",
    "PassthroughPreprocessor",
    "Preprocessor",
    "RecordsPreprocessor",
    "get_preprocessor",
]


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

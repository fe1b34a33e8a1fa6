"""One JSON encoder for ``InferenceBackend.validate()`` and the worker's outputs.

What ``validate()`` accepts, the worker publishes, and the other way round. orjson encodes
numpy arrays and scalars natively and other libraries' values (pandas, torch, PIL) through
:func:`~packflow.utils.normalize.ensure_native_types`. What orjson refuses but the standard
library encodes (integers beyond 64 bits) goes through ``json.dumps``, so nothing that
packflow 0.4.x's ``json.dumps`` check accepted is refused now. NaN and infinities, which JSON
cannot represent, become ``null``; a value neither encoder takes raises ``TypeError`` (or
``ValueError``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from packflow.utils.normalize import ensure_native_types

__all__ = ["FIRST_ATTEMPT_OPTION", "dumps_json"]

#: The orjson option of :func:`dumps_json`'s first attempt (with ``default`` the
#: normalizer): a caller may make that attempt itself and call :func:`dumps_json` when it
#: fails, for the same bytes.
FIRST_ATTEMPT_OPTION = orjson.OPT_SERIALIZE_NUMPY
_STR_KEYS = FIRST_ATTEMPT_OPTION
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps_json(value: Any) -> bytes:
    """``value`` as compact JSON bytes (see the module docstring)."""
    try:
        # str keys only (the common case) encode faster without OPT_NON_STR_KEYS, the same
        # bytes; any other key fails this first attempt and takes the next.
        return orjson.dumps(value, default=ensure_native_types, option=_STR_KEYS)
    except orjson.JSONEncodeError:
        pass
    try:
        return orjson.dumps(value, default=ensure_native_types, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        try:
            text = json.dumps(
                _nan_to_none(value), default=ensure_native_types, separators=(",", ":")
            )
        except (TypeError, ValueError):
            raise exc from None
        return text.encode()


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value

"""Normalize model outputs (numpy, pandas, torch, PIL values) to JSON-native Python types."""

from packflow.utils.normalize import base, handlers, normalize
from packflow.utils.normalize.base import TypeConversionHandler
from packflow.utils.normalize.normalize import ensure_native_types, ensure_valid_output

__all__ = [
    "TypeConversionHandler",
    "base",
    "ensure_native_types",
    "ensure_valid_output",
    "handlers",
    "normalize",
]

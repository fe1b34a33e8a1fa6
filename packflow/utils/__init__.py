"""Data helpers for records: flattening, nested access, arrays and output normalization."""

from packflow.utils import data, normalize
from packflow.utils.data import (
    check_delimiter_collisions,
    flatten_dict,
    flatten_records,
    get_nested_field,
    get_nested_field_direct,
    records_to_ndarray,
    set_nested_field_direct,
    unflatten_dict,
)
from packflow.utils.normalize import ensure_native_types, ensure_valid_output

__all__ = [
    "check_delimiter_collisions",
    "data",
    "ensure_native_types",
    "ensure_valid_output",
    "flatten_dict",
    "flatten_records",
    "get_nested_field",
    "get_nested_field_direct",
    "normalize",
    "records_to_ndarray",
    "set_nested_field_direct",
    "unflatten_dict",
]

"""Keys that contain the nested-field delimiter: found per batch, per record, and reported.

packflow 0.4.1's results depend on such keys for every record: with a nested path and no
flattening it rejects a record holding one anywhere (:func:`check_collisions`), and keys
holding the delimiter can make flattened paths collide. :class:`DelimiterKeys` answers, for
a whole batch at once, "certainly none" or "maybe"; :func:`has_delimiter_key` answers
exactly for one record.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from packflow.exceptions import PreprocessorRuntimeError
from packflow.utils.data import check_delimiter_collisions

__all__ = ["DelimiterKeys", "check_collisions", "has_delimiter_key"]

_is_dict = dict.__instancecheck__
_KEY_SEPARATOR = "\x1f"


class DelimiterKeys:
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


def has_delimiter_key(obj: dict[str, Any], delimiter: str, into_lists: bool) -> bool:
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


def check_collisions(records: list[Any], delimiter: str) -> None:
    """Raise for the first dict of ``records`` holding a key, at any depth, with ``delimiter``.

    0.4.1's collision check: the error names the record and every such key's path.
    """
    for index, record in enumerate(records):
        if isinstance(record, dict) and has_delimiter_key(record, delimiter, False):
            raise _collision_error(index, check_delimiter_collisions(record, delimiter), delimiter)


def _collision_error(index: int, collisions: list[str], delimiter: str) -> PreprocessorRuntimeError:
    return PreprocessorRuntimeError(
        f"Keys containing the delimiter '{delimiter}' were found: {collisions} (record "
        f"{index}). This can cause ambiguity when using nested path access. Either rename "
        "these keys or set ignore_delimiter_collisions=True to bypass this check.",
        record_index=index,
        field=collisions[0],
    )

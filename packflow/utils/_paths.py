"""Compiled nested-path lookups shared by ``packflow.utils.data`` and the preprocessors.

A path such as ``"a.b.c"`` is split once, when a preprocessor is built, into its parts and
the keys each depth could match; lookups then walk the record without flattening it.

Three lookup flavours exist, matching packflow 0.4.x behaviour:

* :meth:`FieldPath.direct` -- the literal top-level key first, else a walk splitting on every
  delimiter (``get_nested_field_direct``; the records preprocessor without flattening).
* :meth:`FieldPath.flat` -- the value the key would have in the flattened record
  (``flatten_dict(record)[path]``): any split of the path may match a key that contains the
  delimiter, lists are indexed only with ``flatten_lists``, a non-empty container is not a
  leaf, and two different matches are an ambiguity.
* :meth:`FieldPath.lenient` -- the literal key first, else :meth:`FieldPath.flat` without list
  indexing (``get_nested_field``; the numpy preprocessor).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["MISSING", "AmbiguousPathError", "FieldPath"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final[Any] = _Missing()
"""Sentinel returned when a path does not resolve (distinct from a stored ``None``)."""


class AmbiguousPathError(ValueError):
    """A path matches more than one key because some key contains the delimiter.

    ``key_path`` is the delimiter-joined path, from the record's top level, of the key that
    contains the delimiter.
    """

    def __init__(self, path: str, key_path: str, delimiter: str) -> None:
        super().__init__(
            f"key '{key_path}' contains the delimiter '{delimiter}', which makes the path "
            f"'{path}' ambiguous. Keys containing the delimiter '{delimiter}' were found: "
            f"['{key_path}']. Rename the key or set ignore_delimiter_collisions=True."
        )
        self.path = path
        self.key_path = key_path


class FieldPath:
    """A nested field path split once on ``delimiter``."""

    __slots__ = ("delimiter", "multi", "name", "nested", "parts", "spans")

    def __init__(self, name: str, delimiter: str) -> None:
        self.name = name
        self.delimiter = delimiter
        self.parts: tuple[str, ...] = tuple(name.split(delimiter))
        self.nested = len(self.parts) > 1
        n = len(self.parts)
        # spans[i]: the (end, key) pairs a dict at depth i could hold, shortest key first.
        self.spans: tuple[tuple[tuple[int, str], ...], ...] = tuple(
            tuple((j, delimiter.join(self.parts[i:j])) for j in range(i + 1, n + 1))
            for i in range(n)
        )
        # multi[i]: only the keys that contain the delimiter (the collision candidates).
        self.multi: tuple[tuple[tuple[int, str], ...], ...] = tuple(s[1:] for s in self.spans)

    def __repr__(self) -> str:
        return f"FieldPath({self.name!r}, {self.delimiter!r})"

    # -- direct -------------------------------------------------------------------------

    def direct(self, obj: Any, check_collisions: bool = False) -> Any:
        """Literal top-level key first, else walk dicts; ``MISSING`` when absent.

        With ``check_collisions``, a key on the walk that contains the delimiter and could
        also match the rest of the path raises :class:`AmbiguousPathError`.
        """
        if not self.nested:
            return obj.get(self.name, MISSING) if isinstance(obj, dict) else MISSING
        if check_collisions:
            return self._direct_checked(obj)
        if not isinstance(obj, dict):
            return MISSING
        if self.name in obj:
            return obj[self.name]
        current = obj
        for part in self.parts:
            if not isinstance(current, dict):
                return MISSING
            current = current.get(part, MISSING)
            if current is MISSING:
                return MISSING
        return current

    def _direct_checked(self, obj: Any) -> Any:
        current = obj
        multi = self.multi
        for depth, part in enumerate(self.parts):
            if not isinstance(current, dict):
                return MISSING
            for _end, key in multi[depth]:
                if key in current:
                    raise self.ambiguity(depth, key)
            current = current.get(part, MISSING)
            if current is MISSING:
                return MISSING
        return current

    def ambiguity(self, depth: int, key: str) -> AmbiguousPathError:
        """The error for ``key`` (one of ``multi[depth]``) found in the dict at ``depth``."""
        prefix = self.delimiter.join(self.parts[:depth])
        return AmbiguousPathError(self.name, _join(prefix, key, self), self.delimiter)

    # -- flattened view -----------------------------------------------------------------

    def flat(self, obj: Any, flatten_lists: bool = False) -> Any:
        """The value of this key in ``flatten_dict(obj)``, computed without flattening."""
        if not self.nested:
            if not isinstance(obj, dict):
                return MISSING
            value = obj.get(self.name, MISSING)
            if value is MISSING or not _is_branch(value, flatten_lists):
                return value
            return MISSING
        return self._flat_from(obj, 0, flatten_lists, "")

    def lenient(self, obj: Any) -> Any:
        """Literal key first, else the flattened view without list indexing."""
        if isinstance(obj, dict) and self.name in obj:
            return obj[self.name]
        return self.flat(obj, False)

    def _flat_from(self, obj: Any, depth: int, flatten_lists: bool, prefix: str) -> Any:
        last = len(self.parts)
        if isinstance(obj, list):
            if not flatten_lists:
                return MISSING
            part = self.parts[depth]
            if not (part.isascii() and part.isdigit() and (part == "0" or part[0] != "0")):
                return MISSING
            index = int(part)
            if index >= len(obj):
                return MISSING
            value = obj[index]
            if depth + 1 == last:
                return MISSING if _is_branch(value, flatten_lists) else value
            return self._flat_from(value, depth + 1, flatten_lists, _join(prefix, part, self))
        if not isinstance(obj, dict):
            return MISSING
        found = MISSING
        found_key = ""
        for end, key in self.spans[depth]:
            if key not in obj:
                continue
            value = obj[key]
            if end == last:
                result = MISSING if _is_branch(value, flatten_lists) else value
            else:
                result = self._flat_from(value, end, flatten_lists, _join(prefix, key, self))
            if result is MISSING:
                continue
            if found is not MISSING:
                culprit = key if self.delimiter in key else found_key
                raise AmbiguousPathError(self.name, _join(prefix, culprit, self), self.delimiter)
            found = result
            found_key = key
        return found


def _join(prefix: str, key: str, path: FieldPath) -> str:
    return f"{prefix}{path.delimiter}{key}" if prefix else key


def _is_branch(value: Any, flatten_lists: bool) -> bool:
    """True if flattening would descend into ``value`` (a non-empty dict, or list)."""
    if isinstance(value, dict):
        return bool(value)
    return flatten_lists and isinstance(value, list) and bool(value)

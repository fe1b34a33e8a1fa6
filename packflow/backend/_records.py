"""The records preprocessor: rename, select and order, or flatten the fields of each record.

Paths are compiled once (:mod:`packflow.backend._compiled` for whole batches); the
interpreter here (``_direct``, ``_flat_impl``) is the reference and the fallback. Records
are walked along the requested paths instead of flattened, except where 0.4.1's result
depends on flattening, and the caller's records are never written to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from packflow.backend._compiled import CompiledSelect, compile_select_direct
from packflow.backend._delimiters import DelimiterKeys, check_collisions, has_delimiter_key
from packflow.backend._preprocessor_base import DICTS, Preprocessor, Records, map_records
from packflow.utils._paths import MISSING, FieldPath
from packflow.utils.data import flatten_dict

__all__ = ["RecordsPreprocessor"]


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
        # Every write in order: (source, target, nested, only if the output lacks target).
        self._writes = [(source, target, nested, False) for source, target, nested in self._renames]
        self._writes += [(path, path, nested, True) for path, nested in self._features]
        self._keys = DelimiterKeys(d)
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
                check_collisions(raw_inputs, self._delimiter)
        if self._flatten and clean and self._features:
            if self._compiled_flat is not None and set(map(type, raw_inputs)) <= DICTS:
                try:
                    return self._compiled_flat.select_all(raw_inputs)
                except Exception:  # a dict subclass inside misbehaved: the loop names it
                    return map_records(raw_inputs, self._flat_without_collisions)
            return map_records(raw_inputs, self._flat_without_collisions)
        compiled = self._compiled
        if (
            compiled is not None
            and isinstance(raw_inputs, list)
            and set(map(type, raw_inputs)) <= DICTS
        ):
            try:
                return compiled.select_all(raw_inputs)
            except Exception:  # a dict subclass inside misbehaved: the loop names it
                return map_records(raw_inputs, self._direct)
        return map_records(raw_inputs, self._transform_record)

    def _direct(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        owned: set[int] = {id(out)}
        for source, target, nested, only_if_unset in self._writes:
            if only_if_unset:
                existing = target.direct(out)
                if existing is not MISSING and existing is not None:
                    continue
            value = source.direct(record)
            if value is MISSING or value is None:
                continue
            if nested:
                _set_owned(out, target.parts, value, owned)
            else:
                out[target.name] = value
        if not self._features:
            out.update(record)
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
            may_collide and has_delimiter_key(record, self._delimiter, lists)
        )
        if whole:
            # The whole flattened record is needed (it is the output, or keys containing the
            # delimiter may collide: flattening raises then).
            flat = flatten_dict(record, self._delimiter, lists)
        out: dict[str, Any] = {}
        for source, target, _nested, only_if_unset in self._writes:
            if only_if_unset and target.name in out:
                continue
            value = flat.get(source.name) if flat is not None else source.flat(record, lists)
            if value is not MISSING and value is not None:
                out[target.name] = value
        if not self._features:
            assert flat is not None
            out.update(flat)
        return out


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

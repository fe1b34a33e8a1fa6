"""Straight-line Python compiled per configuration for the records preprocessor's hot path.

``RecordsPreprocessor`` with ``feature_names`` and no flattening reads a handful of paths
from every record and writes them into a new dict. Interpreting the paths per record costs a
loop and a call per path and depth; instead this module writes, once per configuration, the
code for one record with every path unrolled, and ``exec``s it as two functions: ``select``
(one record) and ``select_all`` (the same body in a loop over a batch, saving a call per
record). Each dict on the way to a source is read once per record (``user`` for both
``user.age`` and ``user.geo.lat``), and each output dict is created once, on its first write.
The generated code only uses constants taken from the configuration through ``repr``, so no
user string is ever evaluated as code.

The interpreter (``RecordsPreprocessor._direct``) stays the reference; tests check both agree
and the golden corpus checks both against packflow 0.4.1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from packflow.utils._paths import MISSING, FieldPath

__all__ = ["CompiledSelect", "compile_select_direct"]


class CompiledSelect:
    """The generated functions: ``select(record)`` and ``select_all(records)``."""

    __slots__ = ("select", "select_all", "source")

    def __init__(
        self,
        select: Callable[[dict[str, Any]], dict[str, Any]],
        select_all: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
        source: str,
    ) -> None:
        self.select = select
        self.select_all = select_all
        self.source = source


class _Body:
    """The code for one record: reads into ``v``, writes into ``out``."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []
        self._sources: dict[tuple[str, ...], str] = {(): "record"}
        self._outputs: dict[tuple[str, ...], str] = {(): "out"}

    def emit(self, indent: int, line: str) -> None:
        self.lines.append((indent, line))

    def source_dict(self, parts: tuple[str, ...]) -> str:
        """The variable holding the record's dict at ``parts`` (``None`` if there is none)."""
        return self._sources[parts]

    def declare_sources(self, paths: Sequence[FieldPath]) -> None:
        """Read, once, every dict on the way to the paths' leaves."""
        for path in paths:
            for depth in range(1, len(path.parts)):
                prefix = path.parts[:depth]
                if prefix in self._sources:
                    continue
                parent = self._sources[prefix[:-1]]
                name = f"s{len(self._sources)}"
                self._sources[prefix] = name
                part = prefix[-1]
                if parent == "record":
                    self.emit(0, f"{name} = record.get({part!r})")
                else:
                    self.emit(
                        0,
                        f"{name} = {parent}.get({part!r}) if isinstance({parent}, dict) else None",
                    )

    def declare_outputs(self, targets: Sequence[FieldPath]) -> None:
        """One variable per output dict, ``None`` until the first write creates it."""
        for target in targets:
            for depth in range(1, len(target.parts)):
                prefix = target.parts[:depth]
                if prefix not in self._outputs:
                    name = f"o{len(self._outputs)}"
                    self._outputs[prefix] = name
                    self.emit(0, f"{name} = None")

    def read(self, indent: int, path: FieldPath, literal: bool) -> None:
        """Leave ``get_nested_field_direct(record, path)`` (or ``None``) in ``v``."""
        parent = self._sources[path.parts[:-1]]
        leaf = path.parts[-1]
        if parent == "record":
            walk = f"record.get({leaf!r})"
        else:
            walk = f"{parent}.get({leaf!r}) if isinstance({parent}, dict) else None"
        if path.nested and literal:  # the whole name as a top-level key first
            self.emit(indent, f"v = record.get({path.name!r}, MISSING)")
            self.emit(indent, "if v is MISSING:")
            self.emit(indent + 1, f"v = {walk}")
        else:
            self.emit(indent, f"v = {walk}")

    def read_output(self, indent: int, path: FieldPath, nested: bool) -> None:
        """Leave the output's value at ``path`` (or ``None``) in ``v``."""
        if not nested:
            self.emit(indent, f"v = out.get({path.name!r})")
            return
        parent = self._outputs[path.parts[:-1]]
        self.emit(indent, f"v = None if {parent} is None else {parent}.get({path.parts[-1]!r})")

    def write(self, indent: int, target: FieldPath, nested: bool) -> None:
        """Store ``v`` at ``target`` in ``out``, creating the dicts on the way."""
        if not (nested and target.nested):
            self.emit(indent, f"out[{target.name!r}] = v")
            return
        for depth in range(1, len(target.parts)):
            prefix = target.parts[:depth]
            name = self._outputs[prefix]
            parent = self._outputs[prefix[:-1]]
            self.emit(indent, f"if {name} is None:")
            self.emit(indent + 1, f"{name} = {parent}[{prefix[-1]!r}] = {{}}")
        self.emit(indent, f"{self._outputs[target.parts[:-1]]}[{target.parts[-1]!r}] = v")

    def render(self, base: int) -> list[str]:
        return ["    " * (base + indent) + line for indent, line in self.lines]


def compile_select_direct(
    renames: Sequence[tuple[FieldPath, FieldPath, bool]],
    features: Sequence[tuple[FieldPath, bool]],
    literal_keys: bool = True,
    leaves_only: bool = False,
) -> CompiledSelect | None:
    """Compile "renames, then features" for one record, or ``None`` if unsupported.

    ``renames`` are ``(source, target, nested)``, ``features`` ``(path, nested)``, in write
    order (``nested``: written as nested dicts). ``literal_keys=False`` skips looking a
    nested path up as one literal key first: the caller guarantees no record has a key
    containing the delimiter (it raised on them already). Unsupported (the caller keeps
    interpreting): an output path that is a strict prefix of another, where an output value
    could be a dict (possibly the caller's) that a later write must descend into; with
    prefix-free outputs every dict in the output is one this code created.

    ``leaves_only``: the flattening mode's reads (lists not indexed) on records where no
    key contains the delimiter: a value is what ``flatten_dict(record)[path]`` holds, so a
    non-empty dict is not one; targets are then all flat keys.
    """
    targets = [(t, nested) for _s, t, nested in renames] + list(features)
    names = {t.name for t, _nested in targets}
    for t, nested in targets:
        if nested:
            for depth in range(1, len(t.parts)):
                if t.delimiter.join(t.parts[:depth]) in names:
                    return None
    body = _Body()
    body.declare_sources([source for source, _t, _n in renames] + [p for p, _n in features])
    body.emit(0, "out = {}")
    body.declare_outputs([t for t, nested in targets if nested])
    written: set[str] = set()
    present = (
        "if v is not None and not (v and isinstance(v, dict)):"
        if leaves_only
        else ("if v is not None:")
    )
    for source, target, nested in renames:
        body.read(0, source, literal_keys)
        body.emit(0, present)
        body.write(1, target, nested)
        written.add(target.name)
    for path, nested in features:
        # A feature already in the output is not read again. With prefix-free outputs only
        # an earlier write to the same name can have put it there.
        indent = 0
        if path.name in written:
            body.read_output(0, path, nested)
            body.emit(0, "if v is None:")
            indent = 1
        body.read(indent, path, literal_keys)
        body.emit(indent, present)
        body.write(indent + 1, path, nested)
        written.add(path.name)

    lines = ["def select(record):", *body.render(1), "    return out", ""]
    lines += [
        "def select_all(records):",
        "    result = []",
        "    append = result.append",
        "    for record in records:",
        *body.render(2),
        "        append(out)",
        "    return result",
    ]
    source_code = "\n".join(lines)
    namespace: dict[str, Any] = {"MISSING": MISSING}
    exec(compile(source_code, "<packflow records preprocessor>", "exec"), namespace)
    select: Callable[[dict[str, Any]], dict[str, Any]] = namespace["select"]
    select.__doc__ = source_code
    return CompiledSelect(select, namespace["select_all"], source_code)

"""Straight-line Python compiled per configuration for the records preprocessor's hot path.

``RecordsPreprocessor`` with ``feature_names`` and no flattening reads a handful of paths
from every record and writes them into a new dict. Interpreting the paths per record costs a
loop and a call per path and depth; instead this module writes one function per configuration
with every path unrolled (``record.get("user")`` then ``.get("age")`` ...), collision checks
included, and ``exec``s it once. The generated code only uses constants taken from the
configuration through ``repr``, so no user string is ever evaluated as code.

The interpreter in ``preprocessors.py`` stays the reference; tests check both agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from packflow.utils._paths import MISSING, FieldPath

__all__ = ["compile_select_direct"]


def _raise_collision(path: FieldPath, depth: int, current: dict[str, Any]) -> None:
    for _end, key in path.multi[depth]:
        if key in current:
            raise path.ambiguity(depth, key)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"_k{len(self.constants)}"
        self.constants[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _emit_read(w: _Writer, indent: int, path: FieldPath, check: bool) -> None:
    """Emit code leaving the value of ``path`` in ``record`` (or ``MISSING``) in ``v``."""
    if not path.nested:
        w.emit(indent, f"v = record.get({path.name!r}, MISSING)")
        return
    path_const = w.const(path)
    w.emit(indent, "v = MISSING")
    if not check:
        w.emit(indent, f"if {path.name!r} in record:")
        w.emit(indent + 1, f"v = record[{path.name!r}]")
        w.emit(indent, "else:")
        indent += 1
    current = "record"
    last = len(path.parts) - 1
    for depth, part in enumerate(path.parts):
        if check and path.multi[depth]:
            test = " or ".join(f"{key!r} in {current}" for _end, key in path.multi[depth])
            w.emit(indent, f"if {test}:")
            w.emit(indent + 1, f"_raise_collision({path_const}, {depth}, {current})")
        if depth == last:
            w.emit(indent, f"v = {current}.get({part!r}, MISSING)")
        else:
            child = f"c{depth + 1}"
            w.emit(indent, f"{child} = {current}.get({part!r}, MISSING)")
            w.emit(indent, f"if isinstance({child}, dict):")
            indent += 1
            current = child


def _emit_write(w: _Writer, indent: int, target: FieldPath, nested: bool) -> None:
    """Emit code storing ``v`` at ``target`` in ``out`` when ``v`` is present."""
    w.emit(indent, "if v is not MISSING:")
    indent += 1
    if not (nested and target.nested):
        w.emit(indent, f"out[{target.name!r}] = v")
        return
    current = "out"
    for depth, part in enumerate(target.parts[:-1]):
        child = f"d{depth + 1}"
        w.emit(indent, f"{child} = {current}.get({part!r})")
        w.emit(indent, f"if {child} is None:")
        w.emit(indent + 1, f"{child} = {current}[{part!r}] = {{}}")
        current = child
    w.emit(indent, f"{current}[{target.parts[-1]!r}] = v")


def compile_select_direct(
    fields: Sequence[tuple[FieldPath, FieldPath, bool]],
    check: bool,
    nested_out: bool,
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """Compile the "rename, then features" transform of one record, or ``None`` if unsupported.

    ``fields`` are ``(source, target, skip_if_set)`` in write order (renames, then features).
    Unsupported (the caller keeps interpreting): an output path that is a strict prefix of
    another, where an output value could be a dict the next write must descend into.
    """
    targets = [target for _source, target, _skip in fields]
    if nested_out:
        names = {t.name for t in targets}
        for t in targets:
            for depth in range(1, len(t.parts)):
                if t.delimiter.join(t.parts[:depth]) in names:
                    return None
    w = _Writer()
    w.emit(0, "def select(record):")
    w.emit(1, "out = {}")
    for source, target, skip_if_set in fields:
        indent = 1
        if skip_if_set:
            w.emit(indent, f"if {w.const(target)}.direct(out) is MISSING:")
            indent += 1
        _emit_read(w, indent, source, check)
        _emit_write(w, indent, target, nested_out)
    w.emit(1, "return out")
    namespace: dict[str, Any] = {
        "MISSING": MISSING,
        "_raise_collision": _raise_collision,
        **w.constants,
    }
    source_code = "\n".join(w.lines)
    exec(compile(source_code, "<packflow records preprocessor>", "exec"), namespace)
    select: Callable[[dict[str, Any]], dict[str, Any]] = namespace["select"]
    select.__doc__ = source_code
    return select

"""Straight-line Python compiled per configuration for the records preprocessor's hot path.

``RecordsPreprocessor`` with ``feature_names`` and no flattening reads a handful of paths
from every record and writes them into a new dict. Interpreting the paths per record costs a
loop and a call per path and depth; instead this module writes one function per configuration
with every path unrolled (``record.get("user")`` then ``.get("age")`` ...) and ``exec``s it
once. The generated code only uses constants taken from the configuration through ``repr``,
so no user string is ever evaluated as code.

The interpreter (``RecordsPreprocessor._direct``) stays the reference; tests check both agree
and the golden corpus checks both against packflow 0.4.1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from packflow.utils._paths import MISSING, FieldPath

__all__ = ["compile_select_direct"]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _emit_read(w: _Writer, indent: int, path: FieldPath, source: str, literal: bool) -> None:
    """Emit code leaving ``get_nested_field_direct(source, path)`` (or ``None``) in ``v``.

    ``literal``: look the whole name up as a top-level key first (as that function does).
    """
    if not path.nested:
        w.emit(indent, f"v = {source}.get({path.name!r})")
        return
    if literal:
        w.emit(indent, f"v = {source}.get({path.name!r}, MISSING)")
        w.emit(indent, "if v is MISSING:")
        indent += 1
    w.emit(indent, "v = None")
    current = source
    last = len(path.parts) - 1
    for depth, part in enumerate(path.parts):
        if depth == last:
            w.emit(indent, f"v = {current}.get({part!r})")
        else:
            child = f"c{depth + 1}"
            w.emit(indent, f"{child} = {current}.get({part!r})")
            w.emit(indent, f"if isinstance({child}, dict):")
            indent += 1
            current = child


def _emit_write(w: _Writer, indent: int, target: FieldPath, nested: bool) -> None:
    """Emit code storing ``v`` at ``target`` in ``out`` (nested dicts created as needed)."""
    if not nested:
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
    renames: Sequence[tuple[FieldPath, FieldPath, bool]],
    features: Sequence[tuple[FieldPath, bool]],
    literal_keys: bool = True,
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """Compile "renames, then features" for one record, or ``None`` if unsupported.

    ``renames`` are ``(source, target, nested)``, ``features`` ``(path, nested)``, in write
    order (``nested``: written as nested dicts). ``literal_keys=False`` skips looking a
    nested path up as one literal key first: the caller guarantees no record has a key
    containing the delimiter (it raised on them already). Unsupported (the caller keeps
    interpreting): an output path that is a strict prefix of another, where an output value
    could be a dict (possibly the caller's) that a later write must descend into.
    """
    targets = [(t, nested) for _s, t, nested in renames] + list(features)
    names = {t.name for t, _nested in targets}
    for t, nested in targets:
        if nested:
            for depth in range(1, len(t.parts)):
                if t.delimiter.join(t.parts[:depth]) in names:
                    return None
    w = _Writer()
    w.emit(0, "def select(record):")
    w.emit(1, "out = {}")
    written: set[str] = set()
    for source, target, nested in renames:
        _emit_read(w, 1, source, "record", literal_keys)
        w.emit(1, "if v is not None:")
        _emit_write(w, 2, target, nested)
        written.add(target.name)
    for path, nested in features:
        # A feature already in the output is not read again. With no output path a strict
        # prefix of another, only an earlier write to the same name can have put it there.
        # Names containing the delimiter are only ever written nested, so the output never
        # holds them as a literal key: the walk alone decides.
        indent = 1
        if path.name in written:
            if nested:
                _emit_read(w, 1, path, "out", False)
                w.emit(1, "if v is None:")
            else:
                w.emit(1, f"if out.get({path.name!r}) is None:")
            indent = 2
        _emit_read(w, indent, path, "record", literal_keys)
        w.emit(indent, "if v is not None:")
        _emit_write(w, indent + 1, path, nested)
        written.add(path.name)
    w.emit(1, "return out")
    namespace: dict[str, Any] = {"MISSING": MISSING}
    source_code = "\n".join(w.lines)
    exec(compile(source_code, "<packflow records preprocessor>", "exec"), namespace)
    select: Callable[[dict[str, Any]], dict[str, Any]] = namespace["select"]
    select.__doc__ = source_code
    return select

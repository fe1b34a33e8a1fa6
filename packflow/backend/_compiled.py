"""Straight-line Python compiled per configuration for the records preprocessor's hot path.

``RecordsPreprocessor`` with ``feature_names`` reads a handful of paths from every record and
writes them into a new dict. Interpreting the paths per record costs a loop and a call per
path and depth; instead this module writes, once per configuration, the code for one record
with every path unrolled, and ``exec``s it as two functions: ``select`` (one record) and
``select_all`` (a batch). Each dict on the way to a source is read once per record (``user``
for both ``user.age`` and ``user.geo.lat``). When every source holds a value (the usual
record) the output is one dict display; otherwise the writes run one by one, each output
dict created on its first write. ``select_all`` builds a batch's nested outputs in two
phases (see :class:`_Nodes`), so that building them triggers no full garbage collections.
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

    def __init__(self, after: _Body | None = None) -> None:
        """A new body; one built ``after`` another knows that one's variables."""
        self.lines: list[tuple[int, str]] = []
        self._sources: dict[tuple[str, ...], str] = {(): "record"}
        self._outputs: dict[tuple[str, ...], str] = {(): "out"}
        if after is not None:
            self._sources = after._sources
            self._outputs = after._outputs

    def emit(self, indent: int, line: str) -> None:
        self.lines.append((indent, line))

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

    def declare_outputs(self, indent: int, targets: Sequence[FieldPath]) -> None:
        """One variable per output dict, ``None`` until the first write creates it."""
        for target in targets:
            for depth in range(1, len(target.parts)):
                prefix = target.parts[:depth]
                if prefix not in self._outputs:
                    name = f"o{len(self._outputs)}"
                    self._outputs[prefix] = name
                    self.emit(indent, f"{name} = None")

    def read(self, indent: int, path: FieldPath, literal: bool, var: str = "v") -> None:
        """Leave ``get_nested_field_direct(record, path)`` (or ``None``) in ``var``."""
        parent = self._sources[path.parts[:-1]]
        leaf = path.parts[-1]
        if parent == "record":
            walk = f"record.get({leaf!r})"
        else:
            walk = f"{parent}.get({leaf!r}) if isinstance({parent}, dict) else None"
        if path.nested and literal:  # the whole name as a top-level key first
            self.emit(indent, f"{var} = record.get({path.name!r}, MISSING)")
            self.emit(indent, f"if {var} is MISSING:")
            self.emit(indent + 1, f"{var} = {walk}")
        else:
            self.emit(indent, f"{var} = {walk}")

    def read_output(self, indent: int, path: FieldPath, nested: bool) -> None:
        """Leave the output's value at ``path`` (or ``None``) in ``v``."""
        if not nested:
            self.emit(indent, f"v = out.get({path.name!r})")
            return
        parent = self._outputs[path.parts[:-1]]
        self.emit(indent, f"v = None if {parent} is None else {parent}.get({path.parts[-1]!r})")

    def write(self, indent: int, target: FieldPath, nested: bool, var: str = "v") -> None:
        """Store ``var`` at ``target`` in ``out``, creating the dicts on the way."""
        if not (nested and target.nested):
            self.emit(indent, f"out[{target.name!r}] = {var}")
            return
        for depth in range(1, len(target.parts)):
            prefix = target.parts[:depth]
            name = self._outputs[prefix]
            parent = self._outputs[prefix[:-1]]
            self.emit(indent, f"if {name} is None:")
            self.emit(indent + 1, f"{name} = {parent}[{prefix[-1]!r}] = {{}}")
        self.emit(indent, f"{self._outputs[target.parts[:-1]]}[{target.parts[-1]!r}] = {var}")

    def render(self, base: int) -> list[str]:
        return ["    " * (base + indent) + line for indent, line in self.lines]


_Write = tuple[FieldPath, FieldPath, bool, bool]  # source, target, nested, read up front


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
    # A feature that an earlier write may already have set (same name) is read only if the
    # output lacks it; every other source is read up front into its own variable.
    writes: list[_Write] = []
    written: set[str] = set()
    for source, target, nested in renames:
        writes.append((source, target, nested, True))
        written.add(target.name)
    for path, nested in features:
        writes.append((path, path, nested, path.name not in written))
        written.add(path.name)
    code = _Code(writes, literal_keys, leaves_only)
    source_code = "\n".join([*code.select(), "", *code.select_all()])
    namespace: dict[str, Any] = {"MISSING": MISSING}
    exec(compile(source_code, "<packflow records preprocessor>", "exec"), namespace)
    select: Callable[[dict[str, Any]], dict[str, Any]] = namespace["select"]
    select.__doc__ = source_code
    return CompiledSelect(select, namespace["select_all"], source_code)


class _Code:
    """The source of ``select`` and ``select_all`` for one list of writes.

    Both read every up-front source first. If each holds a value, the output is known
    (:func:`_output_tree`) and built as dict displays; else the writes run one by one.
    """

    def __init__(self, writes: Sequence[_Write], literal_keys: bool, leaves_only: bool) -> None:
        self._leaves_only = leaves_only
        self.reads = _Body()
        self.reads.declare_sources([source for source, _t, _n, _r in writes])
        upfront: list[str] = []
        for source, _target, _nested, read_first in writes:
            if read_first:
                upfront.append(f"r{len(upfront)}")
                self.reads.read(0, source, literal_keys, upfront[-1])
        self.all_present = " and ".join(f"({self._present(var)})" for var in upfront)
        self.tree = _output_tree(writes, upfront)
        self.general = _Body(self.reads)
        self.general.emit(0, "out = {}")
        self.general.declare_outputs(0, [t for _s, t, nested, _r in writes if nested])
        variables = iter(upfront)
        for source, target, nested, read_first in writes:
            if read_first:
                var = next(variables)
                self.general.emit(0, f"if {self._present(var)}:")
                self.general.write(1, target, nested, var)
                continue
            self.general.read_output(0, target, nested)
            self.general.emit(0, "if v is None:")
            self.general.read(1, source, literal_keys)
            self.general.emit(1, f"if {self._present('v')}:")
            self.general.write(2, target, nested)

    def _present(self, var: str) -> str:
        if self._leaves_only:
            return f"{var} is not None and not ({var} and isinstance({var}, dict))"
        return f"{var} is not None"

    def select(self) -> list[str]:
        return [
            "def select(record):",
            *self.reads.render(1),
            f"    if {self.all_present}:",
            f"        return {_display(self.tree)}",
            *self.general.render(1),
            "    return out",
        ]

    def select_all(self) -> list[str]:
        nodes = _Nodes(self.tree)
        two_phase = bool(nodes.links)
        lines = ["def select_all(records):"]
        if two_phase:
            lines += [
                f"    if len(records) < {_SMALL_BATCH}:",
                "        return [*map(select, records)]",
                "    nodes = []",
                "    keep = nodes.extend",
            ]
        lines += [
            "    result = []",
            "    append = result.append",
            "    for record in records:",
            *self.reads.render(2),
            f"        if {self.all_present}:",
            *(f"            {name} = {display}" for name, display in nodes.displays),
            "            append(out)",
        ]
        if two_phase:
            lines.append(f"            keep(({', '.join(nodes.names)}))")
        lines += ["            continue", *self.general.render(2), "        append(out)"]
        if two_phase:
            chunks = ", ".join(["chunks"] * len(nodes.names))
            lines += [
                "    chunks = iter(nodes)",
                f"    for {', '.join(nodes.names)} in zip({chunks}):",
                *(f"        {parent}[{key!r}] = {child}" for parent, key, child in nodes.links),
            ]
        return [*lines, "    return result"]


#: Batches shorter than this are built record by record (``select``): the two-phase build of
#: ``select_all`` pays for itself only when collections can run during the batch.
_SMALL_BATCH = 32

_Tree = dict[str, Any]  # key -> the variable holding its value, or a nested _Tree


def _output_tree(writes: Sequence[_Write], upfront: list[str]) -> _Tree:
    """The output, as keys -> variables, when every up-front read found a value.

    Then every up-front write happens and every other one is skipped (its name is set), so
    replaying the up-front writes on nested dicts gives the output's keys in their order.
    """
    tree: _Tree = {}
    variables = iter(upfront)
    for _source, target, nested, read_first in writes:
        if not read_first:
            continue
        var = next(variables)
        if nested and target.nested:
            node = tree
            for part in target.parts[:-1]:
                node = node.setdefault(part, {})
            node[target.parts[-1]] = var
        else:
            tree[target.name] = var
    return tree


def _display(tree: _Tree, nested: bool = True) -> str:
    """The dict display of ``tree``; without ``nested``, ``None`` stands for each sub-tree."""
    items = []
    for key, value in tree.items():
        if not isinstance(value, dict):
            items.append(f"{key!r}: {value}")
        else:
            items.append(f"{key!r}: {_display(value) if nested else None}")
    return "{" + ", ".join(items) + "}"


class _Nodes:
    """The output's dicts for the two-phase build of a batch.

    A young collection walks the tracked objects of the young generation and promotes the
    survivors, and enough promoted objects trigger a full collection of the whole heap.
    CPython tracks a dict only once a container is stored in it. So while a batch is built,
    every output dict holds values only (``None`` where a dict goes, which fixes the key's
    place); the dicts are linked once the whole batch is built, in a pass that allocates
    nothing, so no collection runs while they are tracked and none of them is promoted.
    Built already linked, the nested outputs of bench/sdk_speed.py's records_features
    workload cost about a third of its time in full collections.
    """

    def __init__(self, tree: _Tree) -> None:
        self.names: list[str] = ["out"]
        self.displays: list[tuple[str, str]] = []
        self.links: list[tuple[str, str, str]] = []
        self._add("out", tree)

    def _add(self, name: str, tree: _Tree) -> None:
        self.displays.append((name, _display(tree, nested=False)))
        for key, value in tree.items():
            if isinstance(value, dict):
                child = f"d{len(self.names)}"
                self.names.append(child)
                self.links.append((name, key, child))
                self._add(child, value)

"""Helpers for testing backends: build record batches, capture metric events.

``make_records`` builds a batch of independent records from a template, with chosen records
patched (a poison record inside a healthy batch is one line)::

    batch = make_records(500, {"reading": {"value": 1.0}}, patch={250: {"reading.value": "x"}})

``capture_logs`` collects the SDK's log lines (loguru's, as in packflow 0.4.x) while a block
runs, as dicts shaped like structlog's ``capture_logs`` entries. ``capture_metric_events``
collects the metric events: ``backend_call`` (one per call of a backend with
``verbose=True``, an SDK line) and ``batch_metrics`` (one per batch of a worker running in
the same process, a structlog event)::

    with capture_metric_events() as events:
        backend(batch)
    (call,) = events.named("backend_call")
    assert call["batch_size"] == 500
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any, overload

from loguru import logger
from structlog.testing import capture_logs as _capture_structlog

__all__ = [
    "METRIC_EVENTS",
    "MetricEvents",
    "capture_logs",
    "capture_metric_events",
    "make_records",
]

#: The event names that carry metrics (``backend_call``: an SDK line; ``batch_metrics``: the
#: worker's structlog event).
METRIC_EVENTS = ("backend_call", "batch_metrics")

#: One captured event: the fields structlog would render.
Event = MutableMapping[str, Any]

RecordTemplate = Mapping[str, Any] | Callable[[int], Mapping[str, Any]]


def _default_template(index: int) -> dict[str, Any]:
    return {"id": index}


def make_records(
    count: int,
    template: RecordTemplate | None = None,
    *,
    patch: Mapping[int, Mapping[str, Any]] | None = None,
    delimiter: str = ".",
) -> list[dict[str, Any]]:
    """Build ``count`` records, each its own deep copy (a backend mutating one spares the rest).

    ``template`` is a record to copy, or a function of the record's index returning one; by
    default each record is ``{"id": index}``. ``patch`` maps a record index to the fields to
    set in that record, by path: ``{3: {"reading.value": None}}`` sets ``reading.value`` of
    record 3, creating missing nested dicts (``delimiter`` splits the path).

    Raises ``ValueError`` for a negative ``count``, a patched index outside the batch, or a
    template that gives something other than a mapping.
    """
    if count < 0:
        raise ValueError(f"count must be at least 0, got {count}")
    patches = dict(patch or {})
    outside = sorted(index for index in patches if not 0 <= index < count)
    if outside:
        raise ValueError(f"patch names record index {outside[0]}, outside a batch of {count}")
    build = _builder(template)
    records = []
    for index in range(count):
        record = build(index)
        for path, value in patches.get(index, {}).items():
            _set_path(record, path, value, delimiter, index)
        records.append(record)
    return records


def _builder(template: RecordTemplate | None) -> Callable[[int], dict[str, Any]]:
    if template is None:
        return _default_template
    if callable(template):
        make = template

        def from_function(index: int) -> dict[str, Any]:
            record = make(index)
            if not isinstance(record, Mapping):
                raise ValueError(
                    f"template function returned {type(record).__name__} for record {index}, "
                    "expected a mapping"
                )
            return copy.deepcopy(dict(record))

        return from_function
    if not isinstance(template, Mapping):
        raise ValueError(
            f"template must be a mapping or a function of the index, got {type(template).__name__}"
        )
    base = dict(template)
    return lambda _index: copy.deepcopy(base)


def _set_path(record: dict[str, Any], path: str, value: Any, delimiter: str, index: int) -> None:
    *parents, leaf = path.split(delimiter)
    node = record
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            reached = delimiter.join(parents[: depth + 1])
            raise ValueError(
                f"cannot set {path!r} in record {index}: {reached!r} holds "
                f"{type(child).__name__}, not a dict"
            )
        node = child
    node[leaf] = value


class MetricEvents(Sequence[Event]):
    """The metric events captured so far by :func:`capture_metric_events`, oldest first.

    It is live: events emitted while the block runs (e.g. by a worker task) show up at once.
    """

    def __init__(self, entries: list[Event], wanted: frozenset[str]) -> None:
        self._entries = entries
        self._wanted = wanted

    def _events(self) -> list[Event]:
        return [entry for entry in self._entries if entry.get("event") in self._wanted]

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        return self._events()[index]

    def __len__(self) -> int:
        return len(self._events())

    def __repr__(self) -> str:
        return f"MetricEvents({self._events()!r})"

    def named(self, event: str) -> list[Event]:
        """The captured events whose name is ``event`` (e.g. ``"batch_metrics"``)."""
        return [entry for entry in self._events() if entry.get("event") == event]


@contextmanager
def capture_metric_events(*events: str) -> Iterator[MetricEvents]:
    """Collect packflow's metric events (``events``, default :data:`METRIC_EVENTS`) in the block.

    Each captured event is the dict structlog would render (``event``, ``log_level`` and the
    event's fields). structlog events are captured with :func:`structlog.testing.capture_logs`
    (nothing printed meanwhile; it sees loggers that structlog has not cached, so it is meant
    for tests, not for a worker process that configured its logging); the SDK's loguru lines
    (``backend_call``, at DEBUG) through a temporary loguru handler, as :func:`capture_logs`.
    """
    with _capture_structlog() as entries, _capture_loguru(entries):
        yield MetricEvents(entries, frozenset(events or METRIC_EVENTS))


def _log_entry(record: Mapping[str, Any]) -> Event:
    """A loguru record as a structlog-style event dict.

    ``event`` is the record's ``event`` field if it has one (the SDK's own lines do), else
    its message; ``log_level`` is the level name in lower case; the bound and keyword
    fields (``record["extra"]``) follow; ``message`` is added when it differs from
    ``event``, ``exc_info`` (``True``) when an exception was logged.
    """
    extra = dict(record["extra"])
    message = record["message"]
    entry: Event = {"event": extra.pop("event", message), "log_level": record["level"].name.lower()}
    entry.update(extra)
    if entry["event"] != message:
        entry["message"] = message
    if record["exception"] is not None:
        entry["exc_info"] = True
    return entry


@contextmanager
def _capture_loguru(entries: list[Event]) -> Iterator[list[Event]]:
    def sink(message: Any) -> None:
        entries.append(_log_entry(message.record))

    handler_id = logger.add(sink, level=0, format="{message}")
    try:
        yield entries
    finally:
        logger.remove(handler_id)


@contextmanager
def capture_logs() -> Iterator[list[Event]]:
    """Collect every SDK log line (any level) emitted in the block, as :func:`_log_entry` dicts.

    The lines still reach the other handlers (stderr at ``$PACKFLOW_LOG_LEVEL``)::

        with capture_logs() as logs:
            Backend(verbose=True)({"a": 1})
        assert [e["event"] for e in logs] == ["backend_initialized", "backend_call"]
    """
    entries: list[Event] = []
    with _capture_loguru(entries):
        yield entries

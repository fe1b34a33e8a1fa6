"""``packflow.testing``: the batch builder and the metric-event capture model authors test with."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from packflow import InferenceBackend
from packflow.exceptions import InferenceBackendRuntimeError
from packflow.testing import METRIC_EVENTS, capture_metric_events, make_records


class Doubler(InferenceBackend):
    """Doubles ``reading.value``; a non-number fails the call."""

    def execute(self, inputs: Any) -> Any:
        return [{"id": r["id"], "double": r["reading"]["value"] * 2.0} for r in inputs]


def test_default_records_carry_their_index_as_id() -> None:
    assert make_records(3) == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert make_records(0) == []


def test_records_from_a_template_are_independent_deep_copies() -> None:
    template = {"id": 0, "reading": {"value": 1.0, "tags": ["a"]}}
    records = make_records(3, template)
    records[0]["reading"]["tags"].append("mutated")
    records[1]["reading"]["value"] = 9.0
    assert records[2] == template
    assert template == {"id": 0, "reading": {"value": 1.0, "tags": ["a"]}}


def test_a_template_function_gets_the_record_index() -> None:
    records = make_records(4, lambda i: {"id": i, "reading": {"value": float(i)}})
    assert [r["reading"]["value"] for r in records] == [0.0, 1.0, 2.0, 3.0]


def test_patch_sets_dotted_paths_in_the_named_records_only() -> None:
    records = make_records(
        5,
        {"reading": {"value": 1.0}},
        patch={1: {"reading.value": None}, 3: {"reading.unit": "C", "flag": True}},
    )
    assert records[1] == {"reading": {"value": None}}
    assert records[3] == {"reading": {"value": 1.0, "unit": "C"}, "flag": True}
    assert records[0] == records[2] == records[4] == {"reading": {"value": 1.0}}


def test_patch_creates_missing_parents_and_honours_the_delimiter() -> None:
    (record,) = make_records(1, {}, patch={0: {"a/b/c": 1, "x.y": 2}}, delimiter="/")
    assert record == {"a": {"b": {"c": 1}}, "x.y": 2}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": -1}, "count must be at least 0, got -1"),
        ({"count": 3, "patch": {3: {"x": 1}}}, "patch names record index 3, outside a batch of 3"),
        ({"count": 2, "patch": {-1: {"x": 1}}}, "patch names record index -1"),
        ({"count": 1, "template": [1, 2]}, "template must be a mapping or a function"),
        (
            {"count": 2, "template": lambda i: [i]},
            "template function returned list for record 0, expected a mapping",
        ),
        (
            {"count": 2, "template": {"reading": 5}, "patch": {1: {"reading.value": 0}}},
            "cannot set 'reading.value' in record 1: 'reading' holds int, not a dict",
        ),
    ],
)
def test_bad_arguments_name_the_problem(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_records(**kwargs)


@given(count=st.integers(0, 50), data=st.data())
def test_a_patched_record_differs_from_the_template_only_where_patched(
    count: int, data: st.DataObject
) -> None:
    template = {"id": -1, "reading": {"value": 1.0}}
    patched = data.draw(st.sets(st.integers(0, max(count - 1, 0)), max_size=count))
    records = make_records(count, template, patch={i: {"reading.value": i} for i in patched})
    assert len(records) == count
    for index, record in enumerate(records):
        expected = index if index in patched else 1.0
        assert record == {"id": -1, "reading": {"value": expected}}


def test_a_poison_record_built_by_patch_is_reported_at_its_index() -> None:
    batch = make_records(
        500, lambda i: {"id": i, "reading": {"value": 1.0}}, patch={250: {"reading.value": "x"}}
    )
    with pytest.raises(InferenceBackendRuntimeError, match="execute") as caught:
        Doubler()(batch)
    assert isinstance(caught.value.__cause__, TypeError)
    assert Doubler()(batch[:250])[-1] == {"id": 249, "double": 2.0}


def test_capture_collects_one_backend_call_event_per_verbose_call() -> None:
    backend = Doubler(verbose=True)
    with capture_metric_events() as events:
        backend(make_records(3, lambda i: {"id": i, "reading": {"value": i}}))
        backend({"id": 9, "reading": {"value": 1}})
    calls = events.named("backend_call")
    assert [call["batch_size"] for call in calls] == [3, 1]
    assert set(calls[0]["execution_times_ms"]) == {"preprocess", "execute"}
    assert calls[0]["total_execution_time_ms"] == pytest.approx(
        sum(calls[0]["execution_times_ms"].values())
    )
    assert len(events) == 2
    assert events[0] is calls[0]
    assert events[-1:] == [calls[1]]


def test_capture_skips_other_events_and_a_quiet_backend_emits_none() -> None:
    log = structlog.get_logger("test")
    with capture_metric_events() as events:
        Doubler(verbose=False)(make_records(2, {"id": 0, "reading": {"value": 1}}))
        log.info("something_else", x=1)
        log.info("batch_metrics", batch_size=7)
    assert [event["event"] for event in events] == ["batch_metrics"]
    assert set(METRIC_EVENTS) == {"backend_call", "batch_metrics"}


def test_capture_is_live_and_can_be_narrowed_to_chosen_events() -> None:
    log = structlog.get_logger("test")
    with capture_metric_events("custom_metric") as events:
        assert len(events) == 0
        log.info("custom_metric", n=1)
        assert [event["n"] for event in events] == [1]
        log.info("batch_metrics", batch_size=1)
    assert [event["event"] for event in events] == ["custom_metric"]
    assert "custom_metric" in repr(events)

"""The batch_metrics event and its percentile."""

from __future__ import annotations

import numpy as np
import pytest

from worker.metrics import BatchStats, batch_metrics, partition_ranges, percentile


def test_percentile_uses_the_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 50) == 5.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0], 100) == 3.0
    with pytest.raises(ValueError, match="within 0 and 100"):
        percentile([1.0], 101)


def test_partition_ranges_collapse_offsets_per_partition():
    ranges = partition_ranges([("t", 1, 5), ("t", 0, 9), ("t", 1, 3), ("t", 0, 10)])
    assert [(r.partition, r.first_offset, r.last_offset) for r in ranges] == [(0, 9, 10), (1, 3, 5)]


def test_the_event_has_every_documented_field():
    stats = BatchStats(
        batch_size=3,
        records_in=4,
        records_out=3,
        outputs=2,
        dead_letters=1,
        steps_ms={"preprocess": 0.12345, "execute": 2.0},
        executor_queue_wait_ms=0.5,
        latencies_ms=[10.0, 30.0, 20.0],
        partitions=partition_ranges([("t", 0, 7), ("t", 0, 9)]),
        consumer_lag={"t/0": 4},
    )
    event = batch_metrics(stats, backend="B", worker_id="w")
    assert event["backend"] == "B"
    assert event["worker_id"] == "w"
    assert (event["batch_size"], event["records_in"], event["records_out"]) == (3, 4, 3)
    assert event["dead_letters"] == 1
    assert event["steps_ms"] == {"preprocess": 0.123, "execute": 2.0}
    assert event["executor_queue_wait_ms"] == 0.5
    assert event["latency_ms"] == {"p50": 20.0, "max": 30.0}
    assert event["partitions"] == [
        {"topic": "t", "partition": 0, "first_offset": 7, "last_offset": 9}
    ]
    assert event["consumer_lag"] == {"t/0": 4}


def test_a_batch_without_timestamps_reports_no_latency():
    event = batch_metrics(BatchStats(batch_size=1), backend="B", worker_id="w")
    assert event["latency_ms"] == {"p50": None, "max": None}


def test_the_event_reads_latencies_as_an_array_as_it_does_a_list():
    values = [12.5, 3.25, 7.0, 40.125, 3.25]
    as_list, as_array = BatchStats(), BatchStats()
    as_list.latencies_ms, as_array.latencies_ms = values, np.asarray(values)
    from_list = batch_metrics(as_list, backend="b", worker_id="w")["latency_ms"]
    assert from_list == {"p50": 7.0, "max": 40.125}
    assert batch_metrics(as_array, backend="b", worker_id="w")["latency_ms"] == from_list
    assert type(from_list["max"]) is float
    empty = BatchStats()
    empty.latencies_ms = np.asarray([], dtype=float)
    assert batch_metrics(empty, backend="b", worker_id="w")["latency_ms"] == {
        "p50": None,
        "max": None,
    }

"""The latency phase's split of end-to-end latency (bench/_common.py), pure logic."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _common import TopicDump, split_latencies, timed_inputs


def test_sent_times_pair_with_the_last_offsets_of_each_partition() -> None:
    # Partition 0 holds two warm-up records (offsets 0, 1) before the two timed ones;
    # partition 1 holds one warm-up record before its one timed record.
    appended = {(0, 0): 500, (0, 1): 501, (0, 2): 1_010, (0, 3): 1_030, (1, 0): 502, (1, 1): 1_020}
    sent_at = [[1_000.0, 1_025.0], [1_005.0]]
    outputs = TopicDump(
        timestamps=[900, 1_050, 1_070, 1_100, 2_000],
        sources=[(0, 0), (0, 2), (0, 3), (1, 1), None],
    )

    sent = timed_inputs(appended, sent_at)
    parts = split_latencies(appended, sent, outputs)

    assert sent == {(0, 2): 1_000.0, (0, 3): 1_025.0, (1, 1): 1_005.0}

    assert parts["end_to_end"]["count"] == 3
    assert parts["end_to_end"]["max_ms"] == 95.0  # 1,100 - 1,005
    assert parts["to_input"]["max_ms"] == 15.0  # 1,020 - 1,005
    assert parts["through_worker"]["max_ms"] == 80.0  # 1,100 - 1,020
    assert parts["through_worker"]["p50_ms"] == 40.0  # of 40, 40 and 80


def test_since_drops_records_sent_before_it() -> None:
    appended = {(0, 0): 1_010, (0, 1): 2_010}
    outputs = TopicDump(timestamps=[1_020, 2_050], sources=[(0, 0), (0, 1)])

    sent = timed_inputs(appended, [[1_000.0, 2_000.0]])
    parts = split_latencies(appended, sent, outputs, since_ms=1_500)

    assert parts["end_to_end"] == pytest.approx(
        {"count": 1, "p50_ms": 50.0, "p90_ms": 50.0, "p99_ms": 50.0, "max_ms": 50.0}
    )


def test_no_timed_record_gives_a_count_of_zero() -> None:
    appended = {(0, 0): 10}
    parts = split_latencies(
        appended, timed_inputs(appended, [[]]), TopicDump(timestamps=[20], sources=[(0, 0)])
    )

    assert parts == {name: {"count": 0} for name in ("end_to_end", "to_input", "through_worker")}

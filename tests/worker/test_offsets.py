"""OffsetTracker: commit only the contiguous acknowledged prefix, never past a gap."""

from __future__ import annotations

import itertools

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from worker.offsets import OffsetTracker

TP = TopicPartition("t", 0)


def test_nothing_is_committable_before_any_ack():
    tracker = OffsetTracker()
    tracker.register(TP, [0, 1, 2])
    assert tracker.to_commit() == {}


def test_a_gap_holds_the_position_until_it_is_acknowledged():
    tracker = OffsetTracker()
    epoch = tracker.register(TP, [10, 11, 12])
    tracker.ack(TP, 11, epoch)
    tracker.ack(TP, 12, epoch)
    assert tracker.to_commit() == {}
    tracker.ack(TP, 10, epoch)
    assert tracker.to_commit() == {TP: 13}


def test_offsets_with_holes_from_compaction_commit_past_the_last_acknowledged():
    tracker = OffsetTracker()
    epoch = tracker.register(TP, [3, 7, 9])
    tracker.ack(TP, 3, epoch)
    tracker.ack(TP, 7, epoch)
    assert tracker.to_commit() == {TP: 8}


def test_committed_positions_are_not_offered_again():
    tracker = OffsetTracker()
    epoch = tracker.register(TP, [0])
    tracker.ack(TP, 0, epoch)
    tracker.mark_committed(tracker.to_commit())
    assert tracker.to_commit() == {}


def test_acks_from_before_a_revocation_are_ignored():
    tracker = OffsetTracker()
    old = tracker.register(TP, [0, 1])
    tracker.forget({TP})
    new = tracker.register(TP, [0, 1])
    assert new != old
    tracker.ack(TP, 0, old)
    tracker.ack(TP, 1, old)
    assert tracker.to_commit() == {}
    tracker.ack(TP, 1, new)
    assert tracker.to_commit() == {}  # offset 0 is still pending
    tracker.ack(TP, 0, new)
    assert tracker.to_commit() == {TP: 2}  # and so was offset 1


def test_registering_an_offset_that_does_not_increase_is_an_error():
    tracker = OffsetTracker()
    tracker.register(TP, [5])
    with pytest.raises(ValueError, match="t/0: offset 5 registered after 5"):
        tracker.register(TP, [5])


@given(st.lists(st.integers(0, 40), unique=True, min_size=1), st.randoms())
def test_the_committable_position_never_passes_an_unacknowledged_offset(acked_idx, rnd):
    offsets = list(range(0, 82, 2))
    tracker = OffsetTracker()
    epoch = tracker.register(TP, offsets)
    acked = {offsets[i] for i in acked_idx if i < len(offsets)}
    order = sorted(acked)
    rnd.shuffle(order)
    for offset in order:
        tracker.ack(TP, offset, epoch)
    position = tracker.to_commit().get(TP)
    missing = [o for o in offsets if o not in acked]
    if missing and missing[0] == offsets[0]:
        assert position is None
    else:
        assert position is not None
        assert all(o in acked for o in offsets if o < position)
        assert not missing or position <= missing[0]


@given(
    offsets=st.lists(st.integers(0, 50), min_size=1, max_size=30, unique=True),
    split=st.integers(0, 30),
    data=st.data(),
)
def test_acknowledging_offsets_together_moves_the_position_as_one_by_one(
    offsets: list[int], split: int, data: st.DataObject
) -> None:
    registered = sorted(offsets)
    acked = data.draw(st.permutations(registered))[: data.draw(st.integers(0, len(offsets)))]
    one_by_one, together = OffsetTracker(), OffsetTracker()
    epoch = one_by_one.register(TP, registered)
    assert together.register(TP, registered) == epoch
    for offset in acked:
        one_by_one.ack(TP, offset, epoch)
    together.ack_many(TP, acked[:split], epoch)
    together.ack_many(TP, acked[split:], epoch)
    assert together.to_commit() == one_by_one.to_commit()


def test_acknowledging_together_with_a_stale_epoch_is_ignored():
    tracker = OffsetTracker()
    epoch = tracker.register(TP, [0, 1])
    tracker.forget({TP})
    tracker.register(TP, [0, 1])
    tracker.ack_many(TP, [0, 1], epoch)
    assert tracker.to_commit() == {}


@given(
    offsets=st.lists(st.integers(0, 60), min_size=1, max_size=40, unique=True),
    cuts=st.lists(st.integers(0, 40), max_size=6),
    data=st.data(),
)
def test_acknowledging_whole_batches_moves_the_position_as_one_by_one(
    offsets: list[int], cuts: list[int], data: st.DataObject
) -> None:
    registered = sorted(offsets)
    bounds = sorted({0, len(registered), *(min(cut, len(registered)) for cut in cuts)})
    batches = [registered[start:end] for start, end in itertools.pairwise(bounds)]
    order = data.draw(st.permutations(range(len(batches))))  # in order, or settled out of order
    one_by_one, together = OffsetTracker(), OffsetTracker()
    for batch in batches:
        epoch = one_by_one.register(TP, batch)
        assert together.register(TP, batch) == epoch
    for index in order:
        for offset in batches[index]:
            one_by_one.ack(TP, offset, epoch)
        together.ack_many(TP, batches[index], epoch)
        assert together.to_commit() == one_by_one.to_commit()


def test_a_batch_acknowledged_before_an_earlier_one_waits_for_it():
    tracker = OffsetTracker()
    epoch = tracker.register(TP, [0, 1, 2])
    tracker.register(TP, [3, 4])
    tracker.ack_many(TP, [3, 4], epoch)
    assert tracker.to_commit() == {}
    tracker.ack_many(TP, [0, 1, 2], epoch)
    assert tracker.to_commit() == {TP: 5}
    tracker.register(TP, [5, 6])
    tracker.ack_many(TP, [5, 6], epoch)
    assert tracker.to_commit() == {TP: 7}

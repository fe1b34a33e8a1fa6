"""The batch stages without a broker: decode, run (poison isolated), encode, vet, dead letters."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from packflow import InferenceBackend
from worker.codec import encode_output
from worker.errors import OutputEncodeError
from worker.limits import UNLIMITED, TopicLimits
from worker.pipeline import (
    Batch,
    Message,
    apply_outputs,
    apply_results,
    decode_messages,
    new_batch,
    output_headers,
    record_groups,
    run_stages,
    source_of,
    vet_outputs,
)
from worker.runner import BatchRunner, Failure


def record(offset: int, value: bytes | None, key: bytes | None = b"k") -> ConsumerRecord:
    return ConsumerRecord("in", 2, offset, 1000, 0, key, value, None, 1, len(value or b""), ())


class Scorer(InferenceBackend):
    def execute(self, inputs: Any) -> Any:
        for row in inputs:
            if row.get("poison"):
                raise ValueError(f"poison {row['id']}")
        return [{"id": row["id"], "score": np.int64(row["id"]) * 2} for row in inputs]


def test_decoding_gives_records_or_a_decode_dead_letter_per_message():
    messages = [
        Message(record(0, b'{"id": 1}')),
        Message(record(1, b"[{}, {}]")),
        Message(record(2, b"\xff")),
        Message(record(3, b"not json")),
        Message(record(4, b"7")),
        Message(record(5, None)),
    ]
    assert decode_messages(messages) == 3
    assert [m.is_array for m in messages[:2]] == [False, True]
    letters = [m.letter for m in messages[2:]]
    assert [x.error_type for x in letters if x] == [
        "NotUtf8Error",
        "InvalidJsonError",
        "NotARecordError",
        "NotARecordError",
    ]
    assert {x.step for x in letters if x} == {"decode"}
    assert record_groups(messages) == [[{"id": 1}], [{}, {}], [], [], [], []]


def test_results_become_outputs_or_dead_letters_naming_step_record_and_place():
    messages = [Message(record(i, b"{}")) for i in range(3)]
    decode_messages(messages)
    failure = Failure("ValueError", "ValueError: bad", "execute", record_index=0)
    apply_results(messages, [[{"a": 1}], failure, [{"x": object()}]], "Scorer")
    assert messages[0].output == b'{"a":1}'
    assert messages[0].rows == 1
    assert messages[1].output is None
    assert messages[1].letter is not None
    assert messages[1].letter.step == "execute"
    assert messages[1].letter.message == (
        "step 'execute' of Scorer failed on record 0 of in/2@1: ValueError: bad"
    )
    assert messages[2].letter is not None
    assert messages[2].letter.step == "publish"
    assert "output row 0 key 'x'" in messages[2].letter.message


def test_vetting_turns_only_refused_outputs_into_publish_dead_letters():
    small, big = Message(record(0, b"{}")), Message(record(1, b"{}"))
    small.output, small.rows = b"{}", 1
    big.output, big.rows = b"x" * 2000, 1
    keyless = Message(record(2, b"{}", key=None))
    keyless.output, keyless.rows = b"{}", 1
    vet_outputs([small, big, keyless], TopicLimits(1000, 1000), "out")
    assert small.letter is None
    assert big.output is None
    assert big.letter is not None
    assert "over max.message.bytes 1,000 of topic 'out'" in big.letter.message
    assert keyless.letter is None  # keyless is refused only by a compacted topic
    vet_outputs([keyless], TopicLimits(1000, 1000, output_compacted=True), "out")
    assert keyless.letter is not None
    assert keyless.letter.error_type == "InvalidRecordError"


async def test_run_stages_isolates_the_poison_message_and_keeps_its_neighbours():
    values = [{"id": i, "poison": i == 3} for i in range(6)]
    fetched = {TopicPartition("in", 2): [record(i, orjson.dumps(v)) for i, v in enumerate(values)]}
    batch = new_batch(fetched, generation=4)
    assert batch.generation == 4
    assert [p.first_offset for p in batch.stats.partitions] == [0]
    with ThreadPoolExecutor(1) as pool:
        runner = BatchRunner(Scorer(), pool)
        await run_stages(batch, runner, backend="Scorer", limits=UNLIMITED, output_topic="out")
    outcomes = [
        m.letter.step if m.letter else orjson.loads(m.output or b"") for m in batch.messages
    ]
    assert outcomes == [
        {"id": 0, "score": 0},
        {"id": 1, "score": 2},
        {"id": 2, "score": 4},
        "execute",
        {"id": 4, "score": 8},
        {"id": 5, "score": 10},
    ]
    assert batch.stats.records_in == 6
    assert batch.stats.backend_calls > 1
    assert batch.stats.failed_backend_calls >= 1


def test_output_headers_keep_the_inputs_and_name_the_source_once():
    rec = ConsumerRecord(
        "in", 1, 9, 0, 0, b"k", b"{}", None, 1, 2, (("t", b"1"), ("packflow-source", b"x/0/0"))
    )
    headers = output_headers(rec)
    assert headers == [("t", b"1"), ("packflow-source", b"in/1/9")]
    assert source_of(headers) == ("in", 1, 9)


@pytest.mark.parametrize("count", [1, 5])
def test_a_batch_counts_the_bytes_the_budget_takes(count):
    fetched = {TopicPartition("in", 0): [record(i, b"abc") for i in range(count)]}
    batch = new_batch(fetched, 0)
    assert batch.nbytes == count * (3 + 1)
    assert batch.stats.batch_size == count


class Odd:
    """Not JSON: no encoder takes it."""


@pytest.mark.parametrize(
    "row",
    [
        {"a": 1, "b": [1.5, "x", None, True]},
        {1: "int key", "s": 2},  # orjson's first attempt refuses non-str keys
        {"big": 2**70},  # beyond orjson's 64-bit integers: the standard library's encoder
        {"nan": float("nan"), "inf": float("inf")},
        {"n": np.int64(3), "v": np.arange(3), "f": np.float32(0.5)},
        {"odd": Odd()},
    ],
)
@pytest.mark.parametrize("is_array", [False, True])
def test_one_output_per_message_encodes_as_the_general_path_does(row, is_array):
    value = b'[{"id": 1}]' if is_array else b'{"id": 1}'
    one, general = Message(record(0, value)), Message(record(0, value))
    decode_messages([one, general])
    apply_outputs([one], [row])
    apply_results([general], [[row]], "Scorer")
    try:
        expected: bytes | str = encode_output([row], is_array)
    except OutputEncodeError as exc:
        expected = str(exc)
    if isinstance(expected, str):
        assert one.letter is not None
        assert general.letter is not None
        assert one.letter.message == general.letter.message
        assert expected in one.letter.message
        assert one.output is None
        assert one.rows == 0
    else:
        assert one.letter is None
        assert one.output == general.output == expected
        assert one.rows == general.rows == 1


def test_a_fetched_message_carries_the_headers_output_headers_gives():
    plain = record(7, b"{}")
    traced = ConsumerRecord("in", 2, 8, 0, 0, b"k", b"{}", None, 1, 2, (("t", b"1"),))
    batch = new_batch({TopicPartition("in", 2): [plain, traced]}, 0)
    assert [m.headers for m in batch.messages] == [output_headers(plain), output_headers(traced)]
    assert batch.offsets == {TopicPartition("in", 2): [7, 8]}
    assert batch.nbytes == Batch(batch.messages, 0).nbytes == 2 * (1 + 2)


async def test_run_stages_drops_the_decoded_records_once_encoded():
    fetched = {TopicPartition("in", 2): [record(i, b'{"id": 1}') for i in range(3)]}
    batch = new_batch(fetched, 0)
    with ThreadPoolExecutor(1) as pool:
        runner = BatchRunner(Scorer(), pool)
        await run_stages(batch, runner, backend="Scorer", limits=UNLIMITED, output_topic="out")
    assert all(m.records is None and m.output == b'{"id":1,"score":2}' for m in batch.messages)


def test_a_message_copied_with_replace_keeps_its_fields_and_rebuilds_its_headers():
    tp = TopicPartition("in", 2)
    message = Message(record(4, b"{}"), [{}], True, b"[{}]", 1, None, tp)
    copy = dataclasses.replace(message, output=None, rows=0)
    assert (copy.record, copy.records, copy.is_array, copy.tp) == (message.record, [{}], True, tp)
    assert (copy.output, copy.rows, copy.letter) == (None, 0, None)
    assert copy.headers == output_headers(message.record)

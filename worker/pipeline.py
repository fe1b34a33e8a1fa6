"""The stages of one fetched batch, free of Kafka I/O, over one message type.

A :class:`Message` carries one input message from fetch to commit and records its outcome:
an encoded output, or a dead letter. :func:`new_batch` builds a fetch's :class:`Batch`;
:func:`run_stages` runs the stages, in order:

1. :func:`decode_messages`: JSON records, or a ``decode`` dead letter;
2. the backend run (:class:`~worker.runner.BatchRunner`, which isolates poison messages),
   whose results :func:`apply_results` turns into outputs, or dead letters naming the step;
3. :func:`vet_outputs`: an output the broker would refuse for good (over the output topic's
   ``max.message.bytes``, or keyless on a compacted topic) becomes a ``publish`` dead letter.

Every dead letter is built here (:func:`decode_letter`, :func:`failure_letter`,
:func:`encode_failure_letter`, :func:`refusal_letter`, :func:`publish_letter`, and
:func:`fit_dead_letter`, which makes one fit the dead-letter topic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import size_of_varint
from aiokafka.structs import ConsumerRecord, TopicPartition

from packflow.utils._json import FIRST_ATTEMPT_OPTION
from packflow.utils.normalize import ensure_native_types
from worker.codec import DeadLetter, as_records, decode, encode_output, locate
from worker.errors import DecodeError, OutputEncodeError, PublishError
from worker.limits import TopicLimits
from worker.metrics import BatchStats, partition_ranges
from worker.runner import BatchRunner, Failure

__all__ = [
    "HEADROOM",
    "SOURCE_HEADER",
    "Batch",
    "Message",
    "apply_outputs",
    "apply_results",
    "decode_letter",
    "decode_messages",
    "encode_failure_letter",
    "failure_letter",
    "fit_dead_letter",
    "new_batch",
    "one_message_batch_bytes",
    "output_headers",
    "publish_letter",
    "record_groups",
    "refusal_letter",
    "run_stages",
    "source_of",
    "vet_outputs",
]

SOURCE_HEADER = "packflow-source"

_loads = orjson.loads
_dumps = orjson.dumps
#: Over what a one-record batch's request-size estimate adds to its key and value when its
#: only headers are packflow-source (a topic name has at most 249 characters) and a
#: traceparent: the batch header (61 bytes), the record's varints, the headers.
HEADROOM = 1024
_UNPARSED = object()  # not JSON (or no value): decode() says why
# A v2 record batch's fixed header (base offset and length included) and, for its only
# record, the attributes byte and the timestamp and offset deltas (0: one byte each).
_BATCH_HEADER_BYTES = 61
_FIRST_RECORD_FIXED_BYTES = 3


@dataclass(slots=True, eq=False, init=False)
class Message:
    """One input message and its outcome: ``output`` (``rows`` records) or ``letter``.

    ``tp`` is the input partition (the record's when not given); ``headers``, when given,
    must be what :func:`output_headers` makes of the record.
    """

    record: ConsumerRecord[bytes, bytes]
    records: list[dict[str, Any]] | None
    is_array: bool
    output: bytes | None
    rows: int
    letter: DeadLetter | None
    tp: TopicPartition
    _headers: list[tuple[str, bytes]] | None = field(init=False, repr=False)

    # Written out (not generated) to keep the one call per fetched message cheap.
    def __init__(
        self,
        record: ConsumerRecord[bytes, bytes],
        records: list[dict[str, Any]] | None = None,
        is_array: bool = False,
        output: bytes | None = None,
        rows: int = 0,
        letter: DeadLetter | None = None,
        tp: TopicPartition | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.record = record
        self.records = records
        self.is_array = is_array
        self.output = output
        self.rows = rows
        self.letter = letter
        self.tp = TopicPartition(record.topic, record.partition) if tp is None else tp
        self._headers = headers

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        """The headers of its output or dead letter (:func:`output_headers`), built once."""
        if self._headers is None:
            self._headers = output_headers(self.record)
        return self._headers

    def headers_from(self, source_prefix: bytes) -> list[tuple[str, bytes]]:
        """:attr:`headers`, given ``b"topic/partition/"`` of its partition; built for the
        caller and not kept, unless they were already (the publisher's hot path)."""
        headers = self._headers
        return _headers_of(self.record, source_prefix) if headers is None else headers

    def carry_trace(self, trace: list[tuple[str, bytes]]) -> None:
        """Its output or dead letter carries ``trace`` (the batch span's ``traceparent``) in
        place of any trace header of the input."""
        names = {name for name, _ in trace}
        self._headers = [h for h in output_headers(self.record) if h[0] not in names] + trace

    @property
    def nbytes(self) -> int:
        """Key and value bytes, as the in-flight budget counts them."""
        return len(self.record.value or b"") + len(self.record.key or b"")


@dataclass(slots=True, eq=False, init=False)
class Batch:
    """The messages of one fetch, in fetch order, with the assignment generation they belong to.

    ``nbytes`` (key and value bytes of all messages, the budget's) and ``offsets`` (per input
    partition, in order) are computed from the messages unless given.
    """

    messages: list[Message]
    generation: int
    stats: BatchStats
    publish_started: float  # perf_counter() when encoding began (publish_ms)
    nbytes: int
    offsets: dict[TopicPartition, list[int]]

    def __init__(
        self,
        messages: list[Message],
        generation: int,
        stats: BatchStats | None = None,
        *,
        nbytes: int | None = None,
        offsets: dict[TopicPartition, list[int]] | None = None,
    ) -> None:
        self.messages = messages
        self.generation = generation
        self.stats = BatchStats() if stats is None else stats
        self.publish_started = 0.0
        self.nbytes = sum(m.nbytes for m in messages) if nbytes is None else nbytes
        if offsets is None:
            offsets = {}
            for message in messages:
                offsets.setdefault(message.tp, []).append(message.record.offset)
        self.offsets = offsets


def decode_messages(messages: list[Message]) -> int:
    """Decode each message's value; a bad one gets its ``decode`` dead letter. Returns records."""
    count = 0
    for message in messages:
        value = message.record.value
        try:
            data = _loads(value) if value is not None else _UNPARSED
        except orjson.JSONDecodeError:
            data = _UNPARSED
        if type(data) is dict:  # the common case, as decode() would give it
            message.records = [data]
            count += 1
            continue
        try:
            decoded = decode(value) if data is _UNPARSED else as_records(data)
        except DecodeError as exc:
            message.letter = decode_letter(message.record, exc)
        else:
            message.records = decoded.records
            message.is_array = decoded.is_array
            count += len(decoded.records)
    return count


def record_groups(messages: list[Message]) -> list[list[dict[str, Any]]]:
    """The records of each message, as the backend runner takes them (none for dead letters)."""
    return [m.records if m.records is not None and m.letter is None else [] for m in messages]


def apply_results(
    messages: list[Message], results: list[list[Any] | Failure], backend: str
) -> None:
    """Encode each message's outputs, or give it the dead letter of its failure; its decoded
    records are dropped (they are not needed once it has its outcome)."""
    for message, result in zip(messages, results, strict=True):
        message.records = None
        if message.letter is not None:
            continue
        if isinstance(result, Failure):
            message.letter = failure_letter(message.record, result, backend)
        elif len(result) == 1 and not message.is_array:
            _encode_one(message, result[0])
        else:
            _encode(message, result)


def apply_outputs(messages: list[Message], outputs: list[Any]) -> None:
    """Encode each message's one output (``outputs[i]`` is message ``i``'s), as
    :func:`apply_results` does (see :attr:`~worker.runner.BatchRun.one_each`)."""
    for message, output in zip(messages, outputs, strict=True):
        message.records = None
        if message.is_array:
            _encode(message, [output])
        else:
            _encode_one(message, output)


def _encode_one(message: Message, output: Any) -> None:
    """Give a message that is one record its encoded output (or its dead letter)."""
    # As encode_output() first tries to: on any error, encode_output() starts over and
    # says why.
    try:
        message.output = _dumps(output, default=ensure_native_types, option=FIRST_ATTEMPT_OPTION)
    except Exception:
        _encode(message, [output])
    else:
        message.rows = 1


def _encode(message: Message, outputs: list[Any]) -> None:
    try:
        message.output = encode_output(outputs, message.is_array)
    except OutputEncodeError as exc:
        message.letter = encode_failure_letter(message.record, exc)
    else:
        message.rows = len(outputs)


def vet_outputs(messages: list[Message], limits: TopicLimits, output_topic: str) -> None:
    """Turn each output the broker would refuse for good into its ``publish`` dead letter."""
    # An output well under both limits needs no exact check: its estimated request size
    # (aiokafka's, which is over the batch's exact size) is under them. Without input
    # headers, key and value bytes plus HEADROOM are over that estimate.
    fits = min(limits.output_max_message_bytes, limits.max_request_size)
    fits_without_headers = fits - HEADROOM
    compacted = limits.output_compacted
    estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes
    for message in messages:
        output = message.output
        if output is None or message.letter is not None:
            continue
        record = message.record
        if not compacted:
            key = record.key
            if not record.headers:
                if len(output) + (len(key) if key else 0) <= fits_without_headers:
                    continue
            elif estimate(key, output, message.headers) <= fits:
                continue
        letter = refusal_letter(record, output, message.headers, limits, output_topic)
        if letter is not None:
            message.letter = letter
            message.output = None
            message.rows = 0


def decode_letter(record: ConsumerRecord[bytes, bytes], exc: DecodeError) -> DeadLetter:
    """The ``decode`` dead letter of a value that is not JSON records."""
    return DeadLetter.of(record, type(exc).__name__, str(exc), "decode")


def failure_letter(
    record: ConsumerRecord[bytes, bytes], failure: Failure, backend: str
) -> DeadLetter:
    """The dead letter of a message the backend rejected, naming the step and the record."""
    where = locate(record)
    on = where if failure.record_index is None else f"record {failure.record_index} of {where}"
    message = f"step {failure.step!r} of {backend} failed on {on}: {failure.message}"
    letter = DeadLetter.of(record, failure.error_type, message, failure.step, failure.record_index)
    return dataclasses.replace(letter, attempts=failure.attempts)


def encode_failure_letter(
    record: ConsumerRecord[bytes, bytes], exc: OutputEncodeError
) -> DeadLetter:
    """The ``publish`` dead letter of outputs that are not JSON serializable."""
    return DeadLetter.of(record, type(exc).__name__, f"{locate(record)}: {exc}", "publish")


def publish_letter(
    record: ConsumerRecord[bytes, bytes], exc: BaseException, error: PublishError
) -> DeadLetter:
    """The ``publish`` dead letter replacing the output of ``record`` the broker refused."""
    message = f"output of {locate(record)} could not be published: {error}"
    return DeadLetter.of(record, type(exc).__name__, message, "publish")


def one_message_batch_bytes(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> int:
    """The size of a record batch holding only this message (uncompressed).

    This is what aiokafka's ``BatchBuilder.size()`` gives and what the broker compares with
    the topic's ``max.message.bytes``.
    """
    body = _FIRST_RECORD_FIXED_BYTES + int(DefaultRecordBatchBuilder.size_of(key, value, headers))
    return _BATCH_HEADER_BYTES + int(size_of_varint(body)) + body


def refusal_letter(
    record: ConsumerRecord[bytes, bytes],
    value: bytes,
    headers: list[tuple[str, bytes]],
    limits: TopicLimits,
    topic: str,
) -> DeadLetter | None:
    """The ``publish`` dead letter for an output that ``topic`` would refuse, else None."""
    if limits.output_compacted and record.key is None:
        message = (
            f"output of {locate(record)} cannot be published: the input message has no key "
            f"and topic {topic!r} is compacted (its cleanup.policy has compact), which "
            "refuses records without a key"
        )
        return DeadLetter.of(record, "InvalidRecordError", message, "publish")
    size = one_message_batch_bytes(record.key, value, headers)
    limit = limits.output_max_message_bytes
    if size > limit:
        message = (
            f"output of {locate(record)} is {size:,} bytes as a record batch, "
            f"over max.message.bytes {limit:,} of topic {topic!r}"
        )
        return DeadLetter.of(record, "MessageSizeTooLargeError", message, "publish")
    request = int(DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, value, headers))
    if request > limits.max_request_size:
        message = (
            f"output of {locate(record)} is {request:,} bytes as a request, over "
            f"--max-request-size {limits.max_request_size:,}"
        )
        return DeadLetter.of(record, "MessageSizeTooLargeError", message, "publish")
    return None


def fit_dead_letter(
    letter: DeadLetter,
    key: bytes | None,
    headers: list[tuple[str, bytes]],
    limit: int,
    encode: Callable[[DeadLetter], bytes],
) -> tuple[DeadLetter, bytes]:
    """``letter`` and its encoding, made to fit a topic whose ``max.message.bytes`` is ``limit``.

    Over the limit, the original value is left out (:meth:`DeadLetter.without_value`); still
    over it, the end of the error message is cut. Key, headers and ``source`` are kept.
    """
    value = encode(letter)
    size = one_message_batch_bytes(key, value, headers)
    if size > limit and letter.value is not None:
        letter = letter.without_value()
        value = encode(letter)
        size = one_message_batch_bytes(key, value, headers)
    note = f" [cut to fit max.message.bytes {limit:,}]"
    text = letter.message
    while size > limit and text:
        text = text[: max(0, len(text) - (size - limit) - len(note))]
        letter = dataclasses.replace(letter, message=text + note)
        value = encode(letter)
        size = one_message_batch_bytes(key, value, headers)
    return letter, value


def output_headers(record: ConsumerRecord[bytes, bytes]) -> list[tuple[str, bytes]]:
    """The input's headers (an earlier ``packflow-source`` dropped) plus its own source."""
    return _headers_of(record, f"{record.topic}/{record.partition}/".encode())


def _headers_of(
    record: ConsumerRecord[bytes, bytes], source_prefix: bytes
) -> list[tuple[str, bytes]]:
    """:func:`output_headers`, given ``b"topic/partition/"`` of the record."""
    source = b"%b%d" % (source_prefix, record.offset)
    if not record.headers:
        return [(SOURCE_HEADER, source)]
    kept = [(k, v) for k, v in record.headers if k != SOURCE_HEADER]
    kept.append((SOURCE_HEADER, source))
    return kept


def source_of(headers: Iterable[tuple[str, bytes]] | None) -> tuple[str, int, int] | None:
    """``(topic, partition, offset)`` of the input named by an output's ``packflow-source``
    header (as :func:`output_headers` writes it), or None when ``headers`` have none."""
    for name, value in headers or ():
        if name == SOURCE_HEADER:
            topic, partition, offset = value.decode().rsplit("/", 2)
            return topic, int(partition), int(offset)
    return None


def new_batch(
    fetched: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]], generation: int
) -> Batch:
    """The batch of one fetch: its messages in fetch order and the offsets it covers."""
    messages: list[Message] = []
    offsets: dict[TopicPartition, list[int]] = {}
    nbytes = 0
    for tp, records in fetched.items():
        offsets[tp] = [record.offset for record in records]
        nbytes += sum([len(r.value or b"") + len(r.key or b"") for r in records])
        messages += [Message(record, None, False, None, 0, None, tp) for record in records]
    stats = BatchStats(batch_size=len(messages))
    stats.partitions = partition_ranges(
        (tp.topic, tp.partition, offset)
        for tp, records in fetched.items()
        for offset in (records[0].offset, records[-1].offset)
    )
    return Batch(messages, generation, stats, nbytes=nbytes, offsets=offsets)


async def run_stages(
    batch: Batch,
    runner: BatchRunner,
    *,
    backend: str,
    limits: TopicLimits,
    output_topic: str,
    trace_step: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> None:
    """Decode, run the backend (poison isolated), encode and vet: every message gets its outcome.

    ``trace_step(name)``, when tracing, wraps the decoding in a span.
    """
    messages, stats = batch.messages, batch.stats
    started = time.perf_counter()
    with trace_step("decode") if trace_step else contextlib.nullcontext():
        stats.records_in = decode_messages(messages)
    stats.decode_ms = (time.perf_counter() - started) * 1000.0

    run = await runner.run(record_groups(messages))
    stats.steps_ms = run.steps_ms
    stats.executor_queue_wait_ms = run.executor_queue_wait_ms
    stats.backend_calls = run.backend_calls
    stats.failed_backend_calls = run.failed_calls
    stats.backend_retries = run.retries
    stats.timed_out_calls = run.timed_out_calls

    batch.publish_started = time.perf_counter()
    if run.one_each is not None:
        apply_outputs(messages, run.one_each)
    else:
        apply_results(messages, run.results, backend)
    del run  # the outputs and, with them, the decoded records: freed while still in cache
    vet_outputs(messages, limits, output_topic)

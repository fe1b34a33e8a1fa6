"""Shared pieces of the worker benchmarks: broker, topics, records, worker process, timings.

Not a public module: ``worker_throughput.py`` and ``worker_memory.py`` import it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _records import make_record
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from worker.clients import connection_options
from worker.connection_settings import ConnectionSettings
from worker.pipeline import source_of

#: ``make(i, size)``: the JSON value of input record ``i`` (bench/_records.py).
RecordMaker = Callable[[int, int], bytes]
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
BROKER_STATE_DIR = REPO / ".kafka" / "bench"
#: The worker's producer and consumer options (worker/clients.py, worker/settings.py), so
#: that the bare aiokafka pipe runs with the same client configuration.
PRODUCER_OPTIONS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "max_batch_size": 256 * 1024,
}
CONSUMER_OPTIONS: dict[str, Any] = {
    "fetch_max_bytes": 8 * 1024 * 1024,
    "max_partition_fetch_bytes": 1024 * 1024,
}


def connect(bootstrap: str) -> dict[str, Any]:
    """aiokafka connection arguments for ``bootstrap``: the security settings come from the
    same ``PACKFLOW_*`` variables the worker reads (``PACKFLOW_SECURITY_PROTOCOL``...)."""
    return connection_options(ConnectionSettings(bootstrap_servers=bootstrap))


def log(text: str) -> None:
    """Progress line on stderr (stdout carries the JSON result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def kafka(bootstrap_servers: str | None) -> Iterator[str]:
    """Yield ``bootstrap_servers``, or start a local broker for the bench and stop it after."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    sys.path.insert(0, str(REPO / "scripts"))
    from kafka_local import LocalKafka

    broker = LocalKafka(BROKER_STATE_DIR, tie_to_parent=True, announce=log)
    if broker.is_running():
        log(f"reusing the bench broker at {broker.bootstrap_servers}")
        yield broker.bootstrap_servers
        return
    log(f"starting a local Kafka broker in {BROKER_STATE_DIR} ...")
    bootstrap = broker.start()
    log(f"broker up at {bootstrap}")
    try:
        yield bootstrap
    finally:
        broker.stop()
        log("broker stopped")


def run_id() -> str:
    """A short random id that keeps topic and group names of separate runs apart."""
    return uuid.uuid4().hex[:8]


async def create_topic(
    bootstrap: str, name: str, partitions: int, *, log_append_time: bool = False
) -> None:
    """Create ``name``; output topics use broker-side (LogAppendTime) timestamps."""
    configs = {"message.timestamp.type": "LogAppendTime"} if log_append_time else {}
    admin = AIOKafkaAdminClient(**connect(bootstrap))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=configs)]
        )
    finally:
        await admin.close()
    _PARTITION_COUNTS[name] = partitions


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete bench topics so that a reused broker's disk does not fill (best effort)."""
    admin = AIOKafkaAdminClient(**connect(bootstrap))
    with contextlib.suppress(Exception):
        try:
            await asyncio.wait_for(admin.start(), 10)
            await asyncio.wait_for(admin.delete_topics(names), 30)
        finally:
            await admin.close()


async def produce_records(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    record_bytes: int = 500,
    start: int = 0,
    make: RecordMaker = make_record,
) -> float:
    """Produce ``count`` records (``make(i, record_bytes)``) as fast as the client goes;
    return the seconds it took."""
    producer = AIOKafkaProducer(
        **connect(bootstrap), acks=1, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        chunk: list[asyncio.Future[Any]] = []
        for i in range(start, start + count):
            chunk.append(await producer.send(topic, make(i, record_bytes), key=str(i).encode()))
            if len(chunk) >= 20_000:
                await asyncio.gather(*chunk)
                chunk = []
        await asyncio.gather(*chunk)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def produce_at_rate(
    bootstrap: str,
    topic: str,
    count: int,
    rate: float,
    sent_at: list[list[float]],
    *,
    record_bytes: int = 500,
    make: RecordMaker = make_record,
) -> float:
    """Produce ``count`` records at ``rate`` per second, smoothly; return the achieved rate.

    Every 2 ms the records that are due go to the client without waiting for their
    deliveries (waiting would turn the load into bursts); the client batches them.
    Record ``i`` goes to partition ``i % len(sent_at)`` and the wall-clock ms of its
    ``send`` call is appended to that partition's list of ``sent_at``: the k-th time of a
    list is the k-th record this call put in that partition.
    """
    pool = [make(i, record_bytes) for i in range(1024)]
    keys = [str(i).encode() for i in range(1024)]
    producer = AIOKafkaProducer(
        **connect(bootstrap), acks=1, linger_ms=1, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        t0 = time.perf_counter()
        sent = 0
        while sent < count:
            due = min(count, int((time.perf_counter() - t0) * rate) + 1)
            for i in range(sent, due):
                p = i % len(sent_at)
                sent_at[p].append(time.time() * 1000.0)
                await producer.send(topic, pool[i % 1024], key=keys[i % 1024], partition=p)
            sent = max(sent, due)
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - t0
        await producer.flush()
        return count / elapsed
    finally:
        await producer.stop()


#: Partition counts of the topics this process created (every topic the bench reads).
_PARTITION_COUNTS: dict[str, int] = {}


def partitions(topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``, a topic that :func:`create_topic` made."""
    return [TopicPartition(topic, p) for p in range(_PARTITION_COUNTS[topic])]


async def wait_for_messages(
    bootstrap: str,
    topics: list[str],
    expected: int,
    deadline_s: float,
    *,
    alive: Any = None,
) -> int:
    """Poll until ``topics`` together hold ``expected`` messages; return the count reached.

    ``alive`` (a callable returning bool) stops the wait early when the process under test
    has died. Raises ``TimeoutError`` past ``deadline_s`` seconds.
    """
    consumer = AIOKafkaConsumer(**connect(bootstrap))
    await consumer.start()
    try:
        deadline = time.monotonic() + deadline_s
        tps = [tp for topic in topics for tp in partitions(topic)]
        while True:
            total = sum((await consumer.end_offsets(tps)).values()) if tps else 0
            if total >= expected:
                return total
            if alive is not None and not alive():
                raise RuntimeError(f"process under test died; {total}/{expected} messages out")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {total}/{expected} messages after {deadline_s:.0f} s")
            await asyncio.sleep(0.25)
    finally:
        await consumer.stop()


async def wait_for_commits(
    bootstrap: str, group: str, topic: str, deadline_s: float, *, alive: Any = None
) -> None:
    """Poll until ``group`` has committed the end offset of every partition of ``topic``.

    For outputs written in transactions, whose end offsets also count commit markers.
    ``alive`` and the deadline as in :func:`wait_for_messages`.
    """
    consumer = AIOKafkaConsumer(**connect(bootstrap))
    admin = AIOKafkaAdminClient(**connect(bootstrap))
    await consumer.start()
    await admin.start()
    try:
        deadline = time.monotonic() + deadline_s
        ends = await consumer.end_offsets(partitions(topic))
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            behind = sum(
                max(0, end - (committed[tp].offset if tp in committed else 0))
                for tp, end in ends.items()
            )
            if behind == 0:
                return
            if alive is not None and not alive():
                raise RuntimeError(f"process under test died; {behind} messages not committed")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{behind} messages not committed after {deadline_s:.0f} s")
            await asyncio.sleep(0.25)
    finally:
        await admin.close()
        await consumer.stop()


@dataclass
class TopicDump:
    """Timestamps (ms) of a topic's messages, and their source positions when they have one."""

    timestamps: list[int] = field(default_factory=list)
    sources: list[tuple[int, int] | None] = field(default_factory=list)


async def _read_all(bootstrap: str, topic: str) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every committed message currently in ``topic``, partition by partition as fetched."""
    consumer = AIOKafkaConsumer(
        **connect(bootstrap),
        enable_auto_commit=False,
        isolation_level="read_committed",
        **CONSUMER_OPTIONS,
    )
    await consumer.start()
    try:
        tps = partitions(topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=10_000)
            for recs in batches.values():
                for rec in recs:
                    yield rec
            # By position, not by the last record's offset: a transactional topic ends with
            # commit markers, which take offsets and are never returned.
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str, *, with_sources: bool) -> TopicDump:
    """Read every message currently in ``topic`` (timestamps and source headers only)."""
    dump = TopicDump()
    async for rec in _read_all(bootstrap, topic):
        dump.timestamps.append(rec.timestamp)
        if with_sources:
            source = source_of(rec.headers)
            dump.sources.append(None if source is None else source[1:])
    return dump


async def read_input_timestamps(bootstrap: str, topic: str) -> dict[tuple[int, int], int]:
    """``{(partition, offset): timestamp_ms}`` for every message of an input topic."""
    return {(rec.partition, rec.offset): rec.timestamp async for rec in _read_all(bootstrap, topic)}


def throughput(timestamps: list[int]) -> float:
    """Records per second between the first and the last output (broker timestamps, ms)."""
    if len(timestamps) < 2:
        return float("nan")
    span_ms = max(timestamps) - min(timestamps)
    return len(timestamps) / (max(span_ms, 1) / 1000.0)


def latencies(
    inputs: dict[tuple[int, int], int], outputs: TopicDump, since_ms: int | None = None
) -> dict[str, float]:
    """End-to-end latency (output timestamp - input timestamp) percentiles, in ms."""
    values = []
    for ts, src in zip(outputs.timestamps, outputs.sources, strict=True):
        if src is None or src not in inputs:
            continue
        t_in = inputs[src]
        if since_ms is not None and t_in < since_ms:
            continue
        values.append(ts - t_in)
    return _percentiles(values)


def timed_inputs(
    appended: dict[tuple[int, int], int], sent_at: list[list[float]]
) -> dict[tuple[int, int], float]:
    """``{(partition, offset): send time ms}`` of the records :func:`produce_at_rate` sent.

    ``appended`` holds every input of the topic (``{(partition, offset): ...}``) and
    ``sent_at`` the send times per partition, in order: those records are the last ones
    of their partition, after any produced before them (the warm-up).
    """
    offsets: list[list[int]] = [[] for _ in sent_at]
    for p, offset in appended:
        offsets[p].append(offset)
    sent: dict[tuple[int, int], float] = {}
    for p, times in enumerate(sent_at):
        last = sorted(offsets[p])[len(offsets[p]) - len(times) :]
        for offset, t in zip(last, times, strict=True):
            sent[(p, offset)] = t
    return sent


def split_latencies(
    appended: dict[tuple[int, int], int],
    sent: dict[tuple[int, int], float],
    outputs: TopicDump,
    since_ms: int | None = None,
) -> dict[str, dict[str, float]]:
    """End-to-end latency and its two parts, percentiles in ms.

    ``appended`` holds the broker's append time of each input (a LogAppendTime topic) and
    ``sent`` the send times of the timed ones (:func:`timed_inputs`). ``end_to_end`` is
    output append minus send, ``to_input`` input append minus send (the load generator's
    client and the broker), ``through_worker`` output append minus input append.
    """
    parts: dict[str, list[float]] = {"end_to_end": [], "to_input": [], "through_worker": []}
    for ts, src in zip(outputs.timestamps, outputs.sources, strict=True):
        if src is None or src not in sent or (since_ms is not None and sent[src] < since_ms):
            continue
        parts["end_to_end"].append(ts - sent[src])
        parts["to_input"].append(appended[src] - sent[src])
        parts["through_worker"].append(ts - appended[src])
    return {name: _percentiles(values) for name, values in parts.items()}


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "count": len(values),
        "p50_ms": round_ms(float(np.percentile(arr, 50))),
        "p90_ms": round_ms(float(np.percentile(arr, 90))),
        "p99_ms": round_ms(float(np.percentile(arr, 99))),
        "max_ms": round_ms(float(arr.max())),
    }


def round_ms(ms: float) -> float:
    """Milliseconds to 0.1 ms: what a latency figure is printed and saved with (a
    percentile of integer milliseconds printed as "118.01000000000931 ms" before)."""
    return round(ms, 1)


def add_backlog_arguments(parser: argparse.ArgumentParser, *, records: int) -> None:
    """The options every worker bench takes: backlog shape and the broker to use."""
    parser.add_argument("--records", type=int, default=records, help="backlog size")
    parser.add_argument("--record-bytes", type=int, default=500, help="approximate JSON size")
    parser.add_argument("--partitions", type=int, default=4, help="input topic partitions")
    parser.add_argument(
        "--bootstrap-servers", help="use this broker instead of starting a local one"
    )


def run_and_save(
    name: str,
    bench: Callable[[str, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    args: argparse.Namespace,
) -> int:
    """Run ``bench`` on ``--bootstrap-servers`` or a local broker, save its result; exit code."""
    with kafka(args.bootstrap_servers) as bootstrap:
        result = asyncio.run(bench(bootstrap, args))
    save_result(name, result)
    return 0


def save_result(name: str, result: dict[str, Any]) -> Path:
    """Write ``result`` to bench/results/<name>-<time>.json and print it on stdout."""
    # Other work on the machine skews every figure: record how busy it was.
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    text = json.dumps(result, indent=2)
    path.write_text(text + "\n")
    print(text, flush=True)
    log(f"saved {path.relative_to(REPO)}")
    return path

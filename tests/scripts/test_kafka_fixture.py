"""The Kafka fixtures against the real broker: what the worker relies on works on it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ._helpers import ROOT

pytestmark = pytest.mark.kafka

CreateTopic = Callable[..., Awaitable[str]]
WAIT = 30.0
SAMPLE_TEST = "test_create_topic_makes_unique_topics_with_leaders"


async def consume(consumer: AIOKafkaConsumer, count: int, within: float = WAIT) -> list[Any]:
    """Fetch until ``count`` records arrived or the deadline passed."""
    records: list[Any] = []
    deadline = time.monotonic() + within
    while len(records) < count and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=500)
        for tp in sorted(batches, key=lambda tp: tp.partition):
            records.extend(batches[tp])
    return records


async def drain(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> list[Any]:
    """Fetch until the consumer's position on ``tp`` reaches ``end`` (deadline bound)."""
    records: list[Any] = []
    deadline = time.monotonic() + WAIT
    while await consumer.position(tp) < end:
        assert time.monotonic() < deadline, f"{tp} stuck before offset {end}"
        batches = await consumer.getmany(tp, timeout_ms=500)
        records.extend(batches.get(tp, []))
    return records


async def test_create_topic_makes_unique_topics_with_leaders(
    kafka_bootstrap: str, create_topic: CreateTopic
) -> None:
    first = await create_topic(3)
    second = await create_topic(1, prefix="custom.prefix", config={"retention.ms": "600000"})
    assert first != second
    assert first.startswith("test_create_topic_makes_unique_topics_with_leaders-")
    assert second.startswith("custom.prefix-")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = {t["topic"]: t for t in await admin.describe_topics([first, second])}
    finally:
        await admin.close()
    assert [p["leader"] >= 0 for p in topics[first]["partitions"]] == [True] * 3
    assert len(topics[second]["partitions"]) == 1


async def test_round_trip_keeps_keys_headers_and_partition_order(
    kafka_bootstrap: str, create_topic: CreateTopic
) -> None:
    topic = await create_topic(2)
    sent = [
        (i % 2, f"key-{i}".encode(), f"value-{i}".encode(), [("seq", str(i).encode())])
        for i in range(10)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=headers, partition=partition)
            for partition, key, value, headers in sent
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = await consume(consumer, len(sent))
    finally:
        await consumer.stop()
    received = {(r.partition, r.key, r.value, tuple(r.headers)) for r in records}
    assert received == {(p, k, v, tuple(h)) for p, k, v, h in sent}
    for partition in (0, 1):
        offsets = [r.offset for r in records if r.partition == partition]
        values = [r.value for r in records if r.partition == partition]
        assert offsets == sorted(offsets)
        assert values == [v for p, _, v, _ in sent if p == partition]


async def test_new_group_member_resumes_from_committed_offset(
    kafka_bootstrap: str, create_topic: CreateTopic
) -> None:
    topic = await create_topic(1)
    tp = TopicPartition(topic, 0)
    group = f"group-{topic}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(6):
            await producer.send_and_wait(topic, f"m{i}".encode(), partition=0)
    finally:
        await producer.stop()

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1,
        )

    first = member()
    await first.start()
    try:
        seen = await consume(first, 3)
        seen = seen[:3]
        await first.commit({tp: seen[-1].offset + 1})
    finally:
        await first.stop()
    assert [r.value for r in seen] == [b"m0", b"m1", b"m2"]

    second = member()
    await second.start()
    try:
        assert await second.committed(tp) == 3
        rest = await consume(second, 3)
    finally:
        await second.stop()
    assert [r.value for r in rest] == [b"m3", b"m4", b"m5"]


async def test_read_committed_sees_committed_and_not_aborted_transactions(
    kafka_bootstrap: str, create_topic: CreateTopic
) -> None:
    topic = await create_topic(1)
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1", partition=0)
            await producer.send_and_wait(topic, b"committed-2", partition=0)
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-3", partition=0)
    finally:
        await producer.stop()

    def reader(isolation: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap,
            isolation_level=isolation,
            auto_offset_reset="earliest",
        )

    committed_reader = reader("read_committed")
    uncommitted_reader = reader("read_uncommitted")
    for consumer in (committed_reader, uncommitted_reader):
        await consumer.start()
    try:
        for consumer in (committed_reader, uncommitted_reader):
            consumer.assign([tp])
        end = (await committed_reader.end_offsets([tp]))[tp]
        committed = await drain(committed_reader, tp, end)
        uncommitted = await drain(uncommitted_reader, tp, end)
    finally:
        for consumer in (committed_reader, uncommitted_reader):
            await consumer.stop()
    assert [r.value for r in committed] == [b"committed-1", b"committed-2", b"committed-3"]
    assert b"aborted" in [r.value for r in uncommitted]


async def test_offsets_sent_in_a_transaction_commit_only_with_it(
    kafka_bootstrap: str, create_topic: CreateTopic
) -> None:
    source = await create_topic(1, prefix="source")
    sink = await create_topic(1, prefix="sink")
    group = f"group-{source}"
    source_tp, sink_tp = TopicPartition(source, 0), TopicPartition(sink, 0)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{source}-0"
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(sink, b"out-aborted", partition=0)
        await producer.send_offsets_to_transaction({source_tp: 5}, group)
        await producer.abort_transaction()
        await producer.begin_transaction()
        await producer.send_and_wait(sink, b"out-committed", partition=0)
        await producer.send_offsets_to_transaction({source_tp: 7}, group)
        await producer.commit_transaction()
    finally:
        await producer.stop()

    group_member = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    sink_reader = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    for consumer in (group_member, sink_reader):
        await consumer.start()
    try:
        committed = await group_member.committed(source_tp)
        sink_reader.assign([sink_tp])
        end = (await sink_reader.end_offsets([sink_tp]))[sink_tp]
        outputs = await drain(sink_reader, sink_tp, end)
    finally:
        for consumer in (group_member, sink_reader):
            await consumer.stop()
    assert committed == 7
    assert [r.value for r in outputs] == [b"out-committed"]


def _run_fixture_test(env_changes: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    """Run one fixture test in a child pytest with a modified environment."""
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    target = f"{Path(__file__).relative_to(ROOT)}::{SAMPLE_TEST}"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=150,
        check=False,
    )


def test_kafka_unavailable_is_a_failure_with_reason_and_fix_not_a_skip(tmp_path: Path) -> None:
    result = _run_fixture_test(
        {
            "PACKFLOW_TEST_BOOTSTRAP_SERVERS": None,
            "PACKFLOW_TEST_KAFKA": "local",
            "JAVA_HOME": str(tmp_path),
        }
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 error" in output
    assert "skipped" not in output
    assert f"Kafka is unavailable for the tests: JAVA_HOME={tmp_path} has no bin/java" in output
    assert "Fix: install a JDK 17+" in output


def test_bootstrap_env_var_is_used_instead_of_starting_a_broker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A JAVA_HOME without java would make a local start fail: passing proves reuse.
    result = _run_fixture_test(
        {
            "PACKFLOW_TEST_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PACKFLOW_TEST_KAFKA": "local",
            "JAVA_HOME": str(tmp_path),
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


async def test_create_topic_rejects_zero_partitions_naming_the_topic(
    create_topic: CreateTopic,
) -> None:
    with pytest.raises(ValueError, match=r"topic 'zero-[0-9a-f]{12}': partitions must be >= 1"):
        await create_topic(0, prefix="zero")

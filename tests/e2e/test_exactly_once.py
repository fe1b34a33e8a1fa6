"""delivery=exactly-once: outputs, dead letters and offsets commit in one transaction."""

from __future__ import annotations

import asyncio
import base64
import signal

import orjson
import pytest
import structlog
from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced
from aiokafka.structs import ConsumerRecord

from tests.e2e._process import BACKEND, WorkerProcess, worker_env
from tests.e2e.conftest import (
    Identity,
    Poison,
    Slow,
    committed,
    consume,
    produce,
    running_worker,
    wait_for,
)
from worker.app import Worker
from worker.clients import KafkaClients
from worker.pipeline import Message
from worker.transactions import TransactionalPublisher

pytestmark = pytest.mark.kafka


async def test_outputs_dead_letters_and_offsets_are_committed_together(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(2)
    messages = [(f"k{i}".encode(), orjson.dumps({"id": i, "poison": i == 7})) for i in range(30)]
    messages.append((b"bad", b"\xff"))
    await produce(kafka_bootstrap, names["input_topic"], messages)
    settings = worker_settings(**names, delivery="exactly-once")
    async with running_worker(settings, Poison()) as worker:
        outputs = await consume(
            kafka_bootstrap, names["output_topic"], 29, isolation_level="read_committed"
        )
        letters = await consume(
            kafka_bootstrap, names["dlq_topic"], 2, isolation_level="read_committed"
        )
        await wait_for(lambda: worker.budget.empty and worker.batches >= 1, 20, "the batches")
    assert sorted(orjson.loads(o.value)["id"] for o in outputs) == [i for i in range(30) if i != 7]
    assert sorted(orjson.loads(x.value)["error"]["step"] for x in letters) == ["decode", "execute"]
    assert {base64.b64decode(orjson.loads(x.value)["value"]) for x in letters} == {
        b"\xff",
        messages[7][1],
    }
    positions = await committed(kafka_bootstrap, settings.group_id, names["input_topic"], 2)
    assert sum(p or 0 for p in positions.values()) == 31


async def test_a_killed_worker_leaves_no_duplicate_for_read_committed_consumers(
    kafka_bootstrap, topics, tmp_path
):
    names = await topics(2)
    (tmp_path / "pipe.py").write_text(BACKEND.replace("time.sleep(0.02)", "time.sleep(0.002)"))
    env = worker_env(
        kafka_bootstrap,
        names,
        "pipe:Backend",
        max_batch_size="200",
        delivery="exactly-once",
        session_timeout_ms="6000",
        heartbeat_interval_ms="1000",
    )
    total = 6000
    messages = [(f"k{i % 11}".encode(), orjson.dumps({"id": i})) for i in range(total)]
    await produce(kafka_bootstrap, names["input_topic"], messages)

    first = WorkerProcess(tmp_path, env)
    await first.start()
    await wait_for(lambda: len(first.named("batch_metrics")) >= 2, 60, "a few transactions")
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    done_first = sum(e["batch_size"] for e in first.named("batch_metrics"))
    assert 0 < done_first < total, "the kill did not land mid-stream"

    second = WorkerProcess(tmp_path, env)
    await second.start()
    outputs = await consume(
        kafka_bootstrap,
        names["output_topic"],
        total,
        within=90,
        settle=1.0,
        isolation_level="read_committed",
    )
    assert await second.stop() == 0, await second.stderr()
    ids = [orjson.loads(o.value)["id"] for o in outputs]
    assert len(ids) == total, f"{len(ids) - len(set(ids))} duplicates, {total - len(set(ids))} lost"
    assert sorted(ids) == list(range(total))


async def test_a_new_owner_fences_the_old_producer_and_aborts_its_open_transaction(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    settings = worker_settings(**names, delivery="exactly-once")
    tp = TopicPartition(names["input_topic"], 0)
    log = structlog.get_logger("test")
    zombie = TransactionalPublisher(
        KafkaClients(settings), output_partitions=1, backend="B", logger=log
    )
    owner = TransactionalPublisher(
        KafkaClients(settings), output_partitions=1, backend="B", logger=log
    )
    try:
        await zombie.assign({tp})
        stale = zombie._producers[tp]
        await stale.begin_transaction()
        await (await stale.send(names["output_topic"], b'{"from": "zombie"}', partition=0))

        await owner.assign({tp})  # same transactional id: fences the zombie
        with pytest.raises(ProducerFenced):
            await stale.commit_transaction()

        record = ConsumerRecord(names["input_topic"], 0, 0, 1, 0, b"k", b"{}", None, 1, 2, ())
        assert await owner.publish(tp, [Message(record, output=b'{"from": "owner"}', rows=1)])
    finally:
        await zombie.close(5)
        await owner.close(5)
    outputs = await consume(
        kafka_bootstrap, names["output_topic"], 1, settle=1.0, isolation_level="read_committed"
    )
    assert [o.value for o in outputs] == [b'{"from": "owner"}']
    positions = await committed(kafka_bootstrap, settings.group_id, names["input_topic"], 1)
    assert positions == {0: 1}


async def test_a_worker_fenced_during_a_rebalance_exits_1_without_waiting_out_the_deadline(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    settings = worker_settings(**names, delivery="exactly-once", shutdown_timeout_seconds=90)
    tp = TopicPartition(names["input_topic"], 0)
    backend = Slow()
    backend.sleep_s = 3.0
    worker = Worker(settings, backend)
    task = asyncio.create_task(worker.run())
    thief = TransactionalPublisher(
        KafkaClients(settings),
        output_partitions=1,
        backend="B",
        logger=structlog.get_logger("test"),
    )
    try:
        await asyncio.wait_for(worker.started.wait(), 60)
        await wait_for(lambda: worker.assignments >= 1, 30, "the assignment")
        await produce(kafka_bootstrap, names["input_topic"], [(b"k", b'{"id": 1}')])
        await asyncio.to_thread(backend.started.wait, 30)
        await thief.assign({tp})  # the same transactional id: the worker's producer is fenced
        # A second worker joins while the batch is in flight: the first one's revocation
        # waits for it to drain (up to 48 s by default), then the batch meets the fence.
        async with running_worker(settings, Identity()) as joiner:
            code = await asyncio.wait_for(task, 15)  # far less than the 90 s deadline
            await wait_for(lambda: joiner.batches >= 1, 60, "the joiner's batch")
    finally:
        if not task.done():
            worker.force_stop()
            await asyncio.wait_for(task, 30)
        await thief.close(5)
    assert code == 1
    assert "fenced" in str(worker.failure)
    outputs = await consume(
        kafka_bootstrap, names["output_topic"], 1, settle=1.0, isolation_level="read_committed"
    )
    assert [orjson.loads(o.value)["id"] for o in outputs] == [1]

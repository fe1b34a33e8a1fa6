"""TransactionalPublisher: what a failed batch, or an output over the limit, turns into.

(The size check itself is the pipeline's vetting, before the delivery gets the batch.)

The stand-in producer of ``test_publisher`` (with transaction calls recorded) tests the
publisher's own decisions; the e2e tests run transactions against the real broker.
"""

from __future__ import annotations

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from tests.worker.test_publisher import ScriptedProducer, output, record
from worker.clients import KafkaClients
from worker.limits import TopicLimits
from worker.pipeline import vet_outputs
from worker.settings import WorkerSettings
from worker.transactions import TransactionalPublisher


class TransactionalProducer(ScriptedProducer):
    async def begin_transaction(self):
        self.calls.append(("begin",))

    async def send_offsets_to_transaction(self, offsets, group_id):
        self.calls.append(("offsets", dict(offsets)))

    async def commit_transaction(self):
        self.calls.append(("commit",))

    async def abort_transaction(self):
        self.calls.append(("abort",))


async def test_a_refused_batch_in_a_transaction_is_retried_with_one_send_per_message():
    refused = MessageSizeTooLargeError()
    # attempt 1: the batch is refused; attempt 2, one send per message: the second is
    # refused; attempt 3: two outputs and the second one's dead letter.
    producer = TransactionalProducer(None, refused, None, batch_outcomes=(refused,))
    settings = WorkerSettings(input_topic="in", output_topic="out", dlq_topic="dlq", backend="m:B")
    txn = TransactionalPublisher(
        KafkaClients(settings),
        output_partitions=1,
        backend="B",
        logger=structlog.get_logger("test"),
    )
    tp = TopicPartition("in", 0)
    txn._producers[tp] = producer  # type: ignore[assignment]
    items = [output(record(0, o)) for o in range(3)]

    committed = await txn.publish(tp, items)
    assert committed is not None
    items = committed

    assert [None if i.letter is None else i.letter.step for i in items] == [None, "publish", None]
    assert producer.calls == [
        ("begin",),
        ("batch", "out", 0, [b"k0-0", b"k0-1", b"k0-2"]),
        ("abort",),
        ("begin",),
        ("send", "out", 0, b"k0-0"),
        ("send", "out", 0, b"k0-1"),
        ("send", "out", 0, b"k0-2"),
        ("abort",),
        ("begin",),
        ("send", "out", 0, b"k0-0"),
        ("send", "dlq", None, b"k0-1"),
        ("send", "out", 0, b"k0-2"),
        ("offsets", {tp: 3}),
        ("commit",),
    ]
    assert (txn.transactions, txn.aborts) == (1, 2)


async def test_an_output_over_the_limit_is_a_dead_letter_in_the_first_transaction():
    producer = TransactionalProducer()
    settings = WorkerSettings(input_topic="in", output_topic="out", dlq_topic="dlq", backend="m:B")
    txn = TransactionalPublisher(
        KafkaClients(settings),
        output_partitions=1,
        backend="B",
        logger=structlog.get_logger("test"),
        limits=TopicLimits(1000, 100_000),
    )
    tp = TopicPartition("in", 0)
    txn._producers[tp] = producer  # type: ignore[assignment]
    items = [output(record(0, 0)), output(record(0, 1), b"x" * 1000), output(record(0, 2))]
    vet_outputs(items, TopicLimits(1000, 100_000), "out")

    committed = await txn.publish(tp, items)
    assert committed is not None
    items = committed

    assert [None if i.letter is None else i.letter.step for i in items] == [None, "publish", None]
    assert producer.calls == [
        ("begin",),
        ("send", "dlq", None, b"k0-1"),
        ("batch", "out", 0, [b"k0-0", b"k0-2"]),
        ("offsets", {tp: 3}),
        ("commit",),
    ]
    assert (txn.transactions, txn.aborts) == (1, 0)

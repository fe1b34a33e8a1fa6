"""A confluent-kafka (librdkafka) consume -> produce -> commit pipe (runs in bench/.venv-confluent).

The same pipe as the best aiokafka one (``_bare_pipe.py --pipelined``), on librdkafka:
``consume()`` up to ``--max-batch-size`` messages within ``--max-batch-wait-ms``, produce
each output (same key, headers plus the source header, partition ``input partition %
output partitions``), and commit a fetch's offsets only once every output of it and of
every fetch before it was acknowledged by the broker (the worker's commit rule); fetching
goes on while up to ``MAX_UNACKED_FETCHES`` fetches await their acknowledgements. The
client options are ``_common.PRODUCER_OPTIONS`` / ``CONSUMER_OPTIONS`` in librdkafka's
names. Every workload runs the worker's backend on each fetch (``_workloads.apply_batch``);
``--forward-bytes`` forwards the values untouched. Plaintext connections only. Stops after
``--count`` records (or on SIGTERM).
"""

from __future__ import annotations

import argparse
import collections
import signal
from dataclasses import dataclass, field
from typing import Any

from _pipe_args import pipe_parser
from _workloads import WORKLOADS, BatchFunction, apply_batch
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

SOURCE_HEADER = "packflow-source"  # worker.pipeline.SOURCE_HEADER (no worker import here)
#: The worker's client options (_common.PRODUCER_OPTIONS, CONSUMER_OPTIONS), librdkafka names.
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "batch.size": 256 * 1024,
}
CONSUMER_CONFIG: dict[str, Any] = {
    "fetch.max.bytes": 8 * 1024 * 1024,
    "max.partition.fetch.bytes": 1024 * 1024,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
}
MAX_UNACKED_FETCHES = 3  # as the best aiokafka pipe: two queued plus one being awaited


@dataclass
class Fetch:
    """One fetch's outputs not yet acknowledged, and the offsets to commit after them."""

    unacked: int
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    error: str | None = None

    def delivered(self, err: Any, _msg: Any) -> None:
        """librdkafka's delivery report for one output of this fetch."""
        if err is not None:
            self.error = str(err)
        self.unacked -= 1


class Pipe:
    """The consumer, the producer and the fetches in flight, oldest first."""

    def __init__(self, args: argparse.Namespace, backend: BatchFunction | None) -> None:
        common = {"bootstrap.servers": args.bootstrap}
        self.args, self.backend = args, backend
        self.consumer = Consumer({**common, **CONSUMER_CONFIG, "group.id": args.group_id})
        self.producer = Producer({**common, **PRODUCER_CONFIG})
        meta = self.producer.list_topics(args.output_topic, timeout=30)
        self.partitions = len(meta.topics[args.output_topic].partitions)
        self.in_flight: collections.deque[Fetch] = collections.deque()
        self.stopping = False

    def run(self) -> None:
        """Forward ``--count`` records, then wait for the last acknowledgements and commit."""
        self.consumer.subscribe([self.args.input_topic])
        done = 0
        try:
            while done < self.args.count and not self.stopping:
                messages = self.consumer.consume(
                    num_messages=self.args.max_batch_size,
                    timeout=self.args.max_batch_wait_ms / 1000.0,
                )
                done += self.forward([m for m in messages if m.error() is None])
                self.settle(block=len(self.in_flight) >= MAX_UNACKED_FETCHES)
            self.producer.flush(60)
            self.settle(block=False, final=True)
        finally:
            self.consumer.close()

    def forward(self, messages: list[Any]) -> int:
        """Produce one output per message; return how many."""
        if not messages:
            return 0
        fetch = Fetch(unacked=len(messages))
        values = apply_batch(self.backend, [m.value() for m in messages])
        for message, value in zip(messages, values, strict=True):
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            headers = [
                *(message.headers() or []),
                (SOURCE_HEADER, f"{topic}/{partition}/{offset}".encode()),
            ]
            self.produce(value, message.key(), partition % self.partitions, headers, fetch)
            fetch.offsets[(topic, partition)] = offset + 1
        self.in_flight.append(fetch)
        return len(messages)

    def produce(self, value: bytes, key: Any, partition: int, headers: Any, fetch: Fetch) -> None:
        """Queue one output; when librdkafka's queue is full, serve callbacks and retry."""
        while True:
            try:
                self.producer.produce(
                    self.args.output_topic,
                    value,
                    key,
                    partition=partition,
                    headers=headers,
                    on_delivery=fetch.delivered,
                )
                return
            except BufferError:
                self.producer.poll(0.05)

    def settle(self, *, block: bool, final: bool = False) -> None:
        """Serve delivery reports and commit the acknowledged prefix of the fetches.

        ``block`` waits until at least the oldest fetch is acknowledged (back-pressure);
        ``final`` commits synchronously (the consumer closes next).
        """
        self.producer.poll(0)
        while block and self.in_flight and self.in_flight[0].unacked > 0:
            self.producer.poll(0.05)
        offsets: dict[tuple[str, int], int] = {}
        while self.in_flight and self.in_flight[0].unacked <= 0:
            fetch = self.in_flight.popleft()
            if fetch.error is not None:
                raise KafkaException(f"an output was not delivered: {fetch.error}")
            offsets.update(fetch.offsets)
        if offsets:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=not final,
            )


def main() -> int:
    """Command-line entry point."""
    parser = pipe_parser(__doc__)
    args = parser.parse_args()
    pipe = Pipe(args, WORKLOADS[args.workload].pipe_backend(forward_bytes=args.forward_bytes))

    def stop(_signum: int, _frame: object) -> None:
        pipe.stopping = True

    signal.signal(signal.SIGTERM, stop)
    pipe.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

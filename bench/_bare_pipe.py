"""Reference aiokafka consume -> produce -> commit pipes: the ceilings the worker is compared with.

Run by ``worker_throughput.py`` as a subprocess (like the worker), with the worker's client
options (``_common.PRODUCER_OPTIONS`` / ``CONSUMER_OPTIONS``) and batch size. Two pipes:

* bare: per fetch, send every output with ``send()``, await every delivery, commit;
* best (``--pipelined``): each fetch's outputs go out as one record batch per output
  partition (``create_batch``/``send_batch``) while the next fetch runs; an acknowledgement
  task awaits each fetch's deliveries and commits its offsets, in order (the worker's rule).

Outputs keep the input's key and headers, plus the source header; the best pipe writes them
to partition ``input partition % output partitions`` (as the worker), the bare one lets the
key choose. Each fetch is decoded, the workload's backend runs on it once and its outputs
are encoded, as the worker does (``_workloads.apply_batch``); ``--forward-bytes`` forwards
the values untouched instead (no JSON, no backend: only what any correct at-least-once pipe
must do). Stops after ``--count`` records (or on SIGTERM). Both run on
the loop the worker would (``--event-loop``, ``auto`` by default: ``worker/event_loop.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

from _common import CONSUMER_OPTIONS, PRODUCER_OPTIONS, connect
from _pipe_args import pipe_parser
from _workloads import WORKLOADS, BatchFunction, apply_batch
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from worker.event_loop import run as run_on_loop
from worker.event_loop import uses_tls
from worker.pipeline import SOURCE_HEADER

Fetched = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
Output = tuple[ConsumerRecord[bytes, bytes], bytes, list[tuple[str, bytes]]]


@contextlib.asynccontextmanager
async def clients(
    args: argparse.Namespace,
) -> AsyncIterator[tuple[AIOKafkaConsumer, AIOKafkaProducer]]:
    """The pipe's consumer (subscribed to the input, its group, manual commits) and
    producer, both started, with the worker's options; stopped on exit (producer first)."""
    consumer = AIOKafkaConsumer(
        args.input_topic,
        **connect(args.bootstrap),
        group_id=args.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **CONSUMER_OPTIONS,
    )
    producer = AIOKafkaProducer(**connect(args.bootstrap), **PRODUCER_OPTIONS)
    await consumer.start()
    try:
        await producer.start()
        try:
            yield consumer, producer
        finally:
            await producer.stop()
    finally:
        await consumer.stop()


def outputs(fetched: Fetched, backend: BatchFunction | None) -> dict[TopicPartition, list[Output]]:
    """Each input partition's outputs: (input record, output value, output headers)."""
    values = apply_batch(backend, [rec.value for recs in fetched.values() for rec in recs])
    result: dict[TopicPartition, list[Output]] = {}
    i = 0
    for tp, records in fetched.items():
        prefix = f"{tp.topic}/{tp.partition}/"
        result[tp] = [
            (
                rec,
                values[i + n],
                [*rec.headers, (SOURCE_HEADER, (prefix + str(rec.offset)).encode())],
            )
            for n, rec in enumerate(records)
        ]
        i += len(records)
    return result


async def bare_pipe(
    args: argparse.Namespace, backend: BatchFunction | None, stop: asyncio.Event
) -> None:
    """Per fetch: ``send()`` every output, await every delivery, commit."""
    async with clients(args) as (consumer, producer):
        done = 0
        while done < args.count and not stop.is_set():
            fetched = await consumer.getmany(
                timeout_ms=args.max_batch_wait_ms, max_records=args.max_batch_size
            )
            if not fetched:
                continue
            deliveries = []
            for outs in outputs(fetched, backend).values():
                for rec, value, headers in outs:
                    deliveries.append(
                        await producer.send(args.output_topic, value, key=rec.key, headers=headers)
                    )
                done += len(outs)
            await asyncio.gather(*deliveries)
            await consumer.commit({tp: recs[-1].offset + 1 for tp, recs in fetched.items()})


async def send_partition(
    producer: AIOKafkaProducer, topic: str, partition: int, outs: list[Output]
) -> list[asyncio.Future[Any]]:
    """Send ``outs`` to ``topic``/``partition`` in as few record batches as fit, each closed
    before it is sent (as the worker does): aiokafka holds an open one for ``linger_ms``."""
    futures = []
    batch = producer.create_batch()
    for rec, value, headers in outs:
        if batch.append(key=rec.key, value=value, timestamp=None, headers=headers) is None:
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            batch.append(key=rec.key, value=value, timestamp=None, headers=headers)
    batch.close()
    futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def best_pipe(
    args: argparse.Namespace, backend: BatchFunction | None, stop: asyncio.Event
) -> None:
    """The best pipe aiokafka allows: batch API, acknowledgements awaited (and offsets
    committed, in order) by a task while the next fetch runs."""
    async with clients(args) as (consumer, producer):
        pending: asyncio.Queue[tuple[list[asyncio.Future[Any]], dict[Any, int]] | None]
        pending = asyncio.Queue(maxsize=2)  # at most two fetches sent and not yet acknowledged

        async def acknowledge() -> None:
            while (item := await pending.get()) is not None:
                futures, offsets = item
                await asyncio.gather(*futures)
                await consumer.commit(offsets)

        acks = asyncio.create_task(acknowledge())
        partitions = len(await producer.partitions_for(args.output_topic))
        done = 0
        try:
            while done < args.count and not stop.is_set():
                fetched = await consumer.getmany(
                    timeout_ms=args.max_batch_wait_ms, max_records=args.max_batch_size
                )
                if not fetched:
                    continue
                futures: list[asyncio.Future[Any]] = []
                for tp, outs in outputs(fetched, backend).items():
                    futures += await send_partition(
                        producer, args.output_topic, tp.partition % partitions, outs
                    )
                    done += len(outs)
                offsets = {tp: recs[-1].offset + 1 for tp, recs in fetched.items()}
                await pending.put((futures, offsets))
        finally:
            await pending.put(None)
            await acks


async def pipe(args: argparse.Namespace) -> int:
    """Forward ``args.count`` records from the input to the output topic."""
    backend = WORKLOADS[args.workload].pipe_backend(forward_bytes=args.forward_bytes)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await (best_pipe if args.pipelined else bare_pipe)(args, backend, stop)
    return 0


def main() -> int:
    """Command-line entry point."""
    parser = pipe_parser(__doc__)
    parser.add_argument(
        "--pipelined", action="store_true", help="the best pipe (batch API, overlapped acks)"
    )
    parser.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    args = parser.parse_args()
    tls = uses_tls(os.environ.get("PACKFLOW_SECURITY_PROTOCOL"))  # as connect() reads it
    return run_on_loop(pipe(args), args.event_loop, tls=tls)


if __name__ == "__main__":
    raise SystemExit(main())

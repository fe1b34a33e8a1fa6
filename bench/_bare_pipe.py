"""A bare aiokafka consume -> produce -> commit pipe: the ceiling the worker is compared with.

Run by ``worker_throughput.py`` as a subprocess (like the worker), with the worker's client
options (``_common.PRODUCER_OPTIONS`` / ``CONSUMER_OPTIONS``) and batch size. Per batch: send
every value unchanged (same key, headers plus the source header), await every delivery,
commit. No decoding, no backend, no metrics: only what any correct at-least-once pipe on this
client must do. Stops after ``--count`` records (or on SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from _common import CONSUMER_OPTIONS, PRODUCER_OPTIONS, connect
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from worker.pipeline import SOURCE_HEADER


async def pipe(args: argparse.Namespace) -> int:
    """Forward ``args.count`` records from the input to the output topic."""
    if args.pipelined:
        return await best_pipe(args)
    consumer = AIOKafkaConsumer(
        args.input_topic,
        **connect(args.bootstrap),
        group_id=args.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **CONSUMER_OPTIONS,
    )
    producer = AIOKafkaProducer(**connect(args.bootstrap), **PRODUCER_OPTIONS)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < args.count and not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=args.max_batch_wait_ms, max_records=args.max_batch_size
            )
            if not batches:
                continue
            deliveries = []
            offsets = {}
            for tp, records in batches.items():
                prefix = f"{tp.topic}/{tp.partition}/"
                for rec in records:
                    headers = [*rec.headers, (SOURCE_HEADER, (prefix + str(rec.offset)).encode())]
                    deliveries.append(
                        await producer.send(
                            args.output_topic, rec.value, key=rec.key, headers=headers
                        )
                    )
                offsets[tp] = records[-1].offset + 1
                done += len(records)
            await asyncio.gather(*deliveries)
            await consumer.commit(offsets)
    finally:
        await producer.stop()
        await consumer.stop()
    return 0


async def best_pipe(args: argparse.Namespace) -> int:
    """The best pipe aiokafka allows: each fetch's records go out as one record batch per
    output partition (``create_batch``/``send_batch``), and the fetch of the next batch runs
    while an acknowledgement task awaits this one's and commits its offsets, in order."""
    consumer = AIOKafkaConsumer(
        args.input_topic,
        **connect(args.bootstrap),
        group_id=args.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **CONSUMER_OPTIONS,
    )
    producer = AIOKafkaProducer(**connect(args.bootstrap), **PRODUCER_OPTIONS)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    await producer.start()
    pending: asyncio.Queue[tuple[list[asyncio.Future[object]], dict[Any, int]] | None]
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
            futures: list[asyncio.Future[object]] = []
            offsets = {}
            for tp, records in fetched.items():
                prefix = f"{tp.topic}/{tp.partition}/"
                batch = producer.create_batch()
                for rec in records:
                    headers = [*rec.headers, (SOURCE_HEADER, (prefix + str(rec.offset)).encode())]
                    if (
                        batch.append(key=rec.key, value=rec.value, timestamp=None, headers=headers)
                        is None
                    ):
                        futures.append(
                            await producer.send_batch(
                                batch, args.output_topic, partition=tp.partition % partitions
                            )
                        )
                        batch = producer.create_batch()
                        batch.append(key=rec.key, value=rec.value, timestamp=None, headers=headers)
                futures.append(
                    await producer.send_batch(
                        batch, args.output_topic, partition=tp.partition % partitions
                    )
                )
                offsets[tp] = records[-1].offset + 1
                done += len(records)
            await pending.put((futures, offsets))
    finally:
        await pending.put(None)
        await acks
        await producer.stop()
        await consumer.stop()
    return 0


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input-topic", required=True)
    parser.add_argument("--output-topic", required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=500)
    parser.add_argument("--max-batch-wait-ms", type=int, default=20)
    parser.add_argument(
        "--pipelined", action="store_true", help="the best pipe (batch API, overlapped acks)"
    )
    return asyncio.run(pipe(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())

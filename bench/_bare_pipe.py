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

from _common import CONSUMER_OPTIONS, PRODUCER_OPTIONS, connect
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from worker.pipeline import SOURCE_HEADER


async def pipe(args: argparse.Namespace) -> int:
    """Forward ``args.count`` records from the input to the output topic."""
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
    return asyncio.run(pipe(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())

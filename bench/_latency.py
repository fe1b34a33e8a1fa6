"""The ``latency`` phase: end-to-end latency of a caught-up worker at a fixed input rate.

A fresh topic is fed by a producer rate-limited to ``rate`` records/s (half the worker's
measured throughput by default) for up to ``--latency-seconds``; the worker, started and
warmed up first, keeps up. Latency is the output's timestamp (broker LogAppendTime) minus the
producer's ``send`` time, in ms rounded to 0.1: p50/p90/p99/max over the whole run and
over the run after its first second (steady state, reported beside the whole run, never
instead of it). The input topic keeps LogAppendTime too, which splits that latency in two:
to the input (the load generator's client, the broker) and through the worker (input
append to output append).
"""

from __future__ import annotations

import time
from typing import Any

from _common import (
    create_topic,
    delete_topics,
    log,
    produce_at_rate,
    produce_records,
    read_input_timestamps,
    read_topic,
    split_latencies,
    timed_inputs,
    wait_for_messages,
)
from _contenders import worker_args
from _phase import Sitting, cpu_figures, deadline_for
from _worker_process import WorkerRun

WARMUP_RECORDS = 200


async def _latency_worker(sitting: Sitting, round_no: int) -> WorkerRun:
    """Create the phase's own input, output and dead-letter topics; the worker that reads
    them (not started)."""
    args, bootstrap = sitting.args, sitting.bootstrap
    inp, out, dlq = (sitting.topic("lat", round_no, x) for x in ("in", "out", "dlq"))
    await create_topic(bootstrap, inp, args.partitions, log_append_time=True)
    await create_topic(bootstrap, out, args.partitions, log_append_time=True)
    await create_topic(bootstrap, dlq, 1)
    return WorkerRun(
        bootstrap,
        inp,
        out,
        dlq,
        sitting.group("lat", round_no),
        sitting.log_path("latency", round_no),
        extra_args=worker_args(sitting),
        backend_args=sitting.workload.worker_args,
    )


async def latency_phase(sitting: Sitting, round_no: int, rate: float) -> dict[str, Any]:
    """A caught-up worker fed at ``rate`` records/s."""
    args, bootstrap = sitting.args, sitting.bootstrap
    rate = max(100.0, rate)
    count = int(min(args.records, rate * args.latency_seconds))
    worker = await _latency_worker(sitting, round_no)
    inp, out, dlq = worker.input_topic, worker.output_topic, worker.dlq_topic
    make, size = sitting.workload.make, args.record_bytes
    log(f"latency: {count:,} records at {rate:,.0f}/s ...")
    child = worker.start()
    try:
        await produce_records(bootstrap, inp, WARMUP_RECORDS, record_bytes=size, make=make)
        await wait_for_messages(bootstrap, [out, dlq], WARMUP_RECORDS, 120, alive=child.alive)
        sitting.cpu.watch("latency", child.pid)
        since = time.time()
        self_cpu0 = time.process_time()
        sent_at: list[list[float]] = [[] for _ in range(args.partitions)]
        achieved = await produce_at_rate(
            bootstrap, inp, count, rate, sent_at, record_bytes=size, make=make
        )
        self_cpu = time.process_time() - self_cpu0
        await wait_for_messages(
            bootstrap, [out, dlq], WARMUP_RECORDS + count, deadline_for(count), alive=child.alive
        )
        until = time.time()
    except (TimeoutError, RuntimeError) as exc:
        raise RuntimeError(f"latency phase failed: {exc}\n{worker.log_tail()}") from exc
    finally:
        sitting.cpu.unwatch("latency")
        code = worker.stop()
    inputs = await read_input_timestamps(bootstrap, inp)
    dump = await read_topic(bootstrap, out, with_sources=True)
    sent = timed_inputs(inputs, sent_at)
    parts = split_latencies(inputs, sent, dump, since_ms=int(since * 1000))
    steady = split_latencies(inputs, sent, dump, since_ms=int(since * 1000) + 1000)["end_to_end"]
    lat = parts["end_to_end"]
    await delete_topics(bootstrap, [inp, out, dlq])
    busy = until - since
    result = {
        "target_rate_per_s": round(rate),
        "achieved_rate_per_s": round(achieved),
        "exit_code_after_sigterm": code,
        "latency": lat,
        "latency_after_first_second": steady,
        "latency_to_input": parts["to_input"],
        "latency_through_worker": parts["through_worker"],
        "cpu_cores_used": {
            "worker": round((sitting.cpu.used("latency", since, until) or 0.0) / busy, 2),
            "load_generator": round(self_cpu / busy, 2),
        },
        **cpu_figures(sitting.cpu, "latency", since, until, count),
    }
    log(
        f"latency at {achieved:,.0f}/s: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms "
        f"(after the first second: p50 {steady.get('p50_ms')} ms, "
        f"p99 {steady.get('p99_ms')} ms; p99 to the input "
        f"{parts['to_input'].get('p99_ms')} ms, through the worker "
        f"{parts['through_worker'].get('p99_ms')} ms; "
        f"worker {result['cpu_cores_used']['worker']} cores)"
    )
    return result

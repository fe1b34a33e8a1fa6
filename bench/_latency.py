"""The ``latency`` phase: end-to-end latency of a caught-up worker at a fixed input rate.

A fresh topic is fed by a producer rate-limited to ``rate`` records/s (half the worker's
measured throughput by default) for ``--latency-seconds``; the worker, started and
warmed up first, keeps up. Latency is the output's timestamp (broker LogAppendTime) minus the
producer's ``send`` time, in ms rounded to 0.1: p50/p90/p99/max over the whole run and
over the run after its first second (steady state, reported beside the whole run, never
instead of it). The input topic keeps LogAppendTime too, which splits that latency in two:
to the input (the load generator's client, the broker) and through the worker (input
append to output append), and ``broker_gc`` the broker's collections and pause time
in the run (``bench/_broker_gc.py``). The ``latency_best`` phase runs the best aiokafka pipe
(``_bare_pipe.py --pipelined``, the worker's batch options) in the worker's place at the
same rate, on its own topics: what the machine, the broker and the client allow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from _broker_gc import pauses_between, read_gc
from _child import Child
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
from _contenders import pipe_child, pipe_command, worker_args
from _phase import Sitting, cpu_figures, deadline_for
from _worker_process import WorkerRun

WARMUP_RECORDS = 200


async def _topics(sitting: Sitting, phase: str, round_no: int) -> tuple[str, str, str]:
    """The phase's own input, output and dead-letter topics, created."""
    args, bootstrap = sitting.args, sitting.bootstrap
    inp, out, dlq = (sitting.topic(phase, round_no, x) for x in ("in", "out", "dlq"))
    await create_topic(bootstrap, inp, args.partitions, log_append_time=True)
    await create_topic(bootstrap, out, args.partitions, log_append_time=True)
    await create_topic(bootstrap, dlq, 1)
    return inp, out, dlq


def _worker(sitting: Sitting, round_no: int, topics: tuple[str, str, str]) -> Callable[[], Child]:
    """How to start the worker on the phase's topics."""
    inp, out, dlq = topics
    worker = WorkerRun(
        sitting.bootstrap,
        inp,
        out,
        dlq,
        sitting.group("lat", round_no),
        sitting.log_path("latency", round_no),
        extra_args=worker_args(sitting),
        backend_args=sitting.workload.worker_args,
    )
    return worker.start


def _best_pipe(
    sitting: Sitting, round_no: int, topics: tuple[str, str, str], count: int
) -> Callable[[], Child]:
    """How to start the best pipe on the phase's topics, stopping after ``count`` records."""
    inp, out, _ = topics
    group = sitting.group("latbest", round_no)
    command, _ = pipe_command(sitting, "best", group, out, input_topic=inp, count=count)
    return lambda: pipe_child(command, sitting.log_path("latency_best", round_no))


async def latency_phase(
    sitting: Sitting, round_no: int, rate: float, *, contender: str = "worker"
) -> dict[str, Any]:
    """A caught-up ``contender`` (``worker``, or ``best``: the best aiokafka pipe, for
    reference) fed at ``rate`` records/s."""
    args, bootstrap = sitting.args, sitting.bootstrap
    rate = max(100.0, rate)
    # The run lasts --latency-seconds whatever the backlog size (--records): a p99 over a
    # few seconds is the worst stall of the run, not the tail of a steady state.
    count = int(rate * args.latency_seconds)
    phase = "lat" if contender == "worker" else "latbest"
    topics = await _topics(sitting, phase, round_no)
    inp, out, dlq = topics
    if contender == "worker":
        start = _worker(sitting, round_no, topics)
    else:
        start = _best_pipe(sitting, round_no, topics, WARMUP_RECORDS + count)
    make, size = sitting.workload.make, args.record_bytes
    log(f"latency ({contender}): {count:,} records at {rate:,.0f}/s ...")
    child = start()
    try:
        await produce_records(bootstrap, inp, WARMUP_RECORDS, record_bytes=size, make=make)
        await wait_for_messages(bootstrap, [out, dlq], WARMUP_RECORDS, 120, alive=child.alive)
        sitting.cpu.watch("latency", child.pid)
        broker = sitting.cpu.pids.get("broker")
        gc_before = await asyncio.to_thread(read_gc, broker)
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
        gc_after = await asyncio.to_thread(read_gc, broker)
    except (TimeoutError, RuntimeError) as exc:
        raise RuntimeError(f"latency phase failed: {exc}\n{child.log_tail()}") from exc
    finally:
        sitting.cpu.unwatch("latency")
        code = child.stop()
    inputs = await read_input_timestamps(bootstrap, inp)
    dump = await read_topic(bootstrap, out, with_sources=True)
    sent = timed_inputs(inputs, sent_at)
    parts = split_latencies(inputs, sent, dump, since_ms=int(since * 1000))
    steady = split_latencies(inputs, sent, dump, since_ms=int(since * 1000) + 1000)["end_to_end"]
    lat = parts["end_to_end"]
    await delete_topics(bootstrap, [inp, out, dlq])
    busy = until - since
    result = {
        "contender": contender,
        "target_rate_per_s": round(rate),
        "achieved_rate_per_s": round(achieved),
        "exit_code_after_sigterm": code,
        "latency": lat,
        "latency_after_first_second": steady,
        "latency_to_input": parts["to_input"],
        "latency_through_worker": parts["through_worker"],
        "cpu_cores_used": {
            contender: round((sitting.cpu.used("latency", since, until) or 0.0) / busy, 2),
            "load_generator": round(self_cpu / busy, 2),
        },
        **cpu_figures(sitting.cpu, "latency", since, until, count),
        "broker_gc": pauses_between(gc_before, gc_after, busy),
    }
    log(
        f"latency at {achieved:,.0f}/s: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms "
        f"(after the first second: p50 {steady.get('p50_ms')} ms, "
        f"p99 {steady.get('p99_ms')} ms; p99 to the input "
        f"{parts['to_input'].get('p99_ms')} ms, through the {contender} "
        f"{parts['through_worker'].get('p99_ms')} ms; "
        f"{contender} {result['cpu_cores_used'][contender]} cores; broker GC "
        f"{_pauses(result['broker_gc'])})"
    )
    return result


def _pauses(gc: dict[str, Any] | None) -> str:
    """The broker's pauses in a run, as the progress line says them."""
    if gc is None:
        return "not read"
    return f"{gc['pause_ms']} ms in {gc['collections']} collections"

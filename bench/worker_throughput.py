"""Throughput and latency of packflow-worker against a real local Kafka broker.

    .venv/bin/python bench/worker_throughput.py                  # 200,000 records (full run)
    .venv/bin/python bench/worker_throughput.py --records 20000  # quick run

One run, one broker, one input backlog of ``--records`` JSON records (~500 bytes) on a
4-partition topic, every contender reading it with its own consumer group:

1. ``packflow-worker`` (subprocess via the CLI) with the identity backend
   (``bench/identity_backend.py``) and default batching: records/s between its first and
   last output, and end-to-end latency p50/p99 (output minus input message timestamp; the
   output topics use broker LogAppendTime) -- under a backlog, so it includes queueing;
2. a bare aiokafka consume -> produce -> commit pipe (``bench/_bare_pipe.py``, subprocess,
   same client options and batch size): the ceiling for this client; prints worker/bare;
3. a latency run: a fresh topic fed by a producer rate-limited to half of the worker's
   measured throughput for up to ``--latency-seconds`` (at most ``--records`` records),
   reporting p50/p99 over the whole run and over the run after its first second (steady
   state) -- the latency a caught-up worker adds;
4. for reference, the same identity pipeline on Quix Streams (``bench/_quix_pipe.py``),
   installed by this script into its own virtual environment ``bench/.venv-quix``.

Prints progress on stderr and one JSON result on stdout (also saved to bench/results/).
Nothing here asserts a time: these are figures to read and to compare between runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH,
    TopicDump,
    add_backlog_arguments,
    create_topic,
    delete_topics,
    latencies,
    log,
    produce_at_rate,
    produce_records,
    read_input_timestamps,
    read_topic,
    run_and_save,
    run_id,
    throughput,
    wait_for_messages,
)
from _worker_process import WorkerRun, summarise_batches

QUIX_VENV = BENCH / ".venv-quix"
QUIX_REQUIREMENT = "quixstreams>=3.0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_backlog_arguments(parser, records=200_000)
    parser.add_argument("--max-batch-size", type=int, default=500, help="worker and bare pipe")
    parser.add_argument("--max-batch-wait-ms", type=int, default=20, help="worker and bare pipe")
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=20.0,
        help="cap on the rate-limited latency run's length",
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        help="records/s of the latency run (default: half the worker's measured throughput)",
    )
    parser.add_argument(
        "--phases",
        default="worker,bare,best,latency,quix",
        help="comma-separated subset of worker,bare,best,latency,quix",
    )
    args = parser.parse_args(argv)
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    unknown = args.phases - {"worker", "bare", "best", "latency", "quix"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if "latency" in args.phases and "worker" not in args.phases and not args.latency_rate:
        parser.error("the latency phase needs the worker phase or --latency-rate")
    if args.records < 100:
        parser.error("--records must be at least 100")
    return args


def deadline_for(records: int) -> float:
    """Seconds to wait for a contender to finish: generous, never a measurement."""
    return max(180.0, records / 300.0)


async def measure_process(
    name: str,
    bootstrap: str,
    proc_alive: Any,
    output_topic: str,
    expected: int,
    extra_topics: tuple[str, ...] = (),
    *,
    with_sources: bool = False,
) -> tuple[dict[str, Any], TopicDump]:
    """Wait until ``expected`` messages are out, then read and summarise the outputs.

    ``with_sources`` also reads each output's source header (for latencies).
    """
    t0 = time.monotonic()
    await wait_for_messages(
        bootstrap,
        [output_topic, *extra_topics],
        expected,
        deadline_for(expected),
        alive=proc_alive,
    )
    wall = time.monotonic() - t0
    dump = await read_topic(bootstrap, output_topic, with_sources=with_sources)
    result: dict[str, Any] = {
        "outputs": len(dump.timestamps),
        "records_per_s": round(throughput(dump.timestamps)),
        "wall_s_incl_startup": round(wall, 2),
    }
    log(f"{name}: {result['records_per_s']:,} records/s ({result['outputs']:,} outputs)")
    return result, dump


def _batch_args(args: argparse.Namespace) -> list[str]:
    """The batch options the worker and the bare pipe both run with."""
    return [
        "--max-batch-size",
        str(args.max_batch_size),
        "--max-batch-wait-ms",
        str(args.max_batch_wait_ms),
    ]


async def run_worker_backlog(
    bootstrap: str, args: argparse.Namespace, rid: str, input_topic: str, inputs: Any
) -> dict[str, Any]:
    """Phase 1: the worker drains the backlog."""
    out, dlq = f"bench-{rid}-out-worker", f"bench-{rid}-dlq-worker"
    await create_topic(bootstrap, out, args.partitions, log_append_time=True)
    await create_topic(bootstrap, dlq, 1)
    worker = WorkerRun(
        bootstrap,
        input_topic,
        out,
        dlq,
        f"bench-{rid}-worker",
        BENCH / "results" / f"worker-{rid}.log",
        extra_args=_batch_args(args),
    )
    log("phase 1: packflow-worker drains the backlog ...")
    worker.start()
    try:
        result, dump = await measure_process(
            "worker", bootstrap, worker.alive, out, args.records, (dlq,), with_sources=True
        )
        # Output minus input timestamp of a backlog: mostly time spent waiting in the backlog
        # since it was produced. The latency run (phase 3) measures a caught-up worker.
        result["latency_under_backlog"] = latencies(inputs, dump)
    except (TimeoutError, RuntimeError) as exc:
        raise RuntimeError(f"worker phase failed: {exc}\n{worker.log_tail()}") from exc
    finally:
        code = worker.stop()
    result["exit_code_after_sigterm"] = code
    result["batches"] = summarise_batches(worker.batch_metrics())
    await delete_topics(bootstrap, [out, dlq])
    return result


def _pipe_args(bootstrap: str, input_topic: str, out: str, group_id: str) -> list[str]:
    """The arguments both reference pipes (_bare_pipe.py, _quix_pipe.py) take."""
    return [
        "--bootstrap",
        bootstrap,
        "--input-topic",
        input_topic,
        "--output-topic",
        out,
        "--group-id",
        group_id,
    ]


def start_bare_pipe(
    bootstrap: str,
    args: argparse.Namespace,
    rid: str,
    input_topic: str,
    out: str,
    *,
    pipelined: bool = False,
) -> subprocess.Popen[bytes]:
    """Start bench/_bare_pipe.py on the backlog (``pipelined``: the best pipe)."""
    name = "best" if pipelined else "bare"
    return subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "_bare_pipe.py"),
            *_pipe_args(bootstrap, input_topic, out, f"bench-{rid}-{name}"),
            "--count",
            str(args.records),
            *_batch_args(args),
            *(["--pipelined"] if pipelined else []),
        ],
        cwd=BENCH,
        stdin=subprocess.DEVNULL,
    )


async def run_bare_pipe(
    bootstrap: str, args: argparse.Namespace, rid: str, input_topic: str, *, pipelined: bool = False
) -> dict[str, Any]:
    """Phase 2: the bare aiokafka pipe (or, ``pipelined``, the best one) drains the backlog."""
    name = "best" if pipelined else "bare"
    out = f"bench-{rid}-out-{name}"
    await create_topic(bootstrap, out, args.partitions, log_append_time=True)
    log(f"phase 2: {name} aiokafka consume -> produce -> commit pipe ...")
    proc = start_bare_pipe(bootstrap, args, rid, input_topic, out, pipelined=pipelined)
    try:
        result, _ = await measure_process(
            f"{name} pipe", bootstrap, lambda: proc.poll() in (None, 0), out, args.records
        )
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(60)
    await delete_topics(bootstrap, [out])
    return result


async def run_latency(
    bootstrap: str, args: argparse.Namespace, rid: str, rate: float
) -> dict[str, Any]:
    """Phase 3: a caught-up worker fed at ``rate`` records/s (half its throughput)."""
    rate = max(100.0, rate)
    count = int(min(args.records, rate * args.latency_seconds))
    inp, out, dlq = (f"bench-{rid}-lat-{x}" for x in ("in", "out", "dlq"))
    await create_topic(bootstrap, inp, args.partitions)
    await create_topic(bootstrap, out, args.partitions, log_append_time=True)
    await create_topic(bootstrap, dlq, 1)
    worker = WorkerRun(
        bootstrap,
        inp,
        out,
        dlq,
        f"bench-{rid}-lat",
        BENCH / "results" / f"worker-latency-{rid}.log",
        extra_args=_batch_args(args),
    )
    log(f"phase 3: latency run, {count:,} records at {rate:,.0f}/s ...")
    warmup = 200
    worker.start()
    try:
        await produce_records(bootstrap, inp, warmup, record_bytes=args.record_bytes)
        await wait_for_messages(bootstrap, [out, dlq], warmup, 120, alive=worker.alive)
        since_ms = int(time.time() * 1000)
        cpu_worker0, cpu_self0, t0 = worker.cpu_seconds(), time.process_time(), time.monotonic()
        achieved = await produce_at_rate(
            bootstrap, inp, count, rate, record_bytes=args.record_bytes
        )
        cpu_self = time.process_time() - cpu_self0
        await wait_for_messages(
            bootstrap, [out, dlq], warmup + count, deadline_for(count), alive=worker.alive
        )
        busy = time.monotonic() - t0
        cpu_worker = worker.cpu_seconds() - cpu_worker0
    except (TimeoutError, RuntimeError) as exc:
        raise RuntimeError(f"latency phase failed: {exc}\n{worker.log_tail()}") from exc
    finally:
        code = worker.stop()
    inputs = await read_input_timestamps(bootstrap, inp)
    dump = await read_topic(bootstrap, out, with_sources=True)
    lat = latencies(inputs, dump, since_ms=since_ms)
    # The first second of load includes a one-off fetch stall in about half the runs (see
    # bench/README.md); steady state is reported beside the whole run, never instead of it.
    steady = latencies(inputs, dump, since_ms=since_ms + 1000)
    await delete_topics(bootstrap, [inp, out, dlq])
    log(
        f"latency at {achieved:,.0f}/s: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms "
        f"(after the first second: p50 {steady.get('p50_ms')} ms, p99 {steady.get('p99_ms')} ms; "
        f"CPU cores: worker {cpu_worker / busy:.2f}, load generator {cpu_self / busy:.2f})"
    )
    return {
        "target_rate_per_s": round(rate),
        "achieved_rate_per_s": round(achieved),
        "exit_code_after_sigterm": code,
        "latency": lat,
        "latency_after_first_second": steady,
        "cpu_cores_used": {
            "worker": round(cpu_worker / busy, 2),
            "load_generator": round(cpu_self / busy, 2),
        },
    }


def ensure_quix_venv() -> Path:
    """``bench/.venv-quix`` with quixstreams installed (created on first use)."""
    python = QUIX_VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run(
            [str(python), "-c", "import quixstreams"], capture_output=True, check=False
        )
        if check.returncode == 0:
            return python
    log(f"installing {QUIX_REQUIREMENT} into {QUIX_VENV.relative_to(BENCH.parent)} ...")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(QUIX_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", QUIX_REQUIREMENT],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return python


def quix_version(python: Path) -> str:
    """The quixstreams version installed in ``bench/.venv-quix``."""
    return subprocess.run(
        [str(python), "-c", "import quixstreams; print(quixstreams.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def start_quix(
    python: Path, bootstrap: str, rid: str, input_topic: str, out: str, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start bench/_quix_pipe.py (Quix's own venv) on the backlog, logging to ``log_path``."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [
                str(python),
                str(BENCH / "_quix_pipe.py"),
                *_pipe_args(bootstrap, input_topic, out, f"bench-{rid}-quix"),
            ],
            cwd=BENCH,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


async def run_quix(
    bootstrap: str, args: argparse.Namespace, rid: str, input_topic: str
) -> dict[str, Any]:
    """Phase 4: Quix Streams drains the same backlog (reference only)."""
    try:
        python = ensure_quix_venv()
    except (OSError, subprocess.CalledProcessError) as exc:
        return {"error": f"could not install {QUIX_REQUIREMENT}: {exc}"}
    version = quix_version(python)
    out = f"bench-{rid}-out-quix"
    await create_topic(bootstrap, out, args.partitions, log_append_time=True)
    log(f"phase 4: Quix Streams {version} identity pipeline ...")
    log_path = BENCH / "results" / f"quix-{rid}.log"
    proc = start_quix(python, bootstrap, rid, input_topic, out, log_path)
    try:
        result, _ = await measure_process(
            "quix streams", bootstrap, lambda: proc.poll() is None, out, args.records
        )
    except (TimeoutError, RuntimeError) as exc:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        result = {"error": f"{exc}\n{tail}"}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    result["version"] = version
    await delete_topics(bootstrap, [out])
    return result


async def bench(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run every phase on one broker and return the result document."""
    rid = run_id()
    input_topic = f"bench-{rid}-in"
    await create_topic(bootstrap, input_topic, args.partitions)
    log(f"producing {args.records:,} records of ~{args.record_bytes} B to {input_topic} ...")
    seconds = await produce_records(
        bootstrap, input_topic, args.records, record_bytes=args.record_bytes
    )
    log(f"produced in {seconds:.1f} s ({args.records / seconds:,.0f}/s)")
    inputs = await read_input_timestamps(bootstrap, input_topic)
    result: dict[str, Any] = {
        "bench": "worker_throughput",
        "records": args.records,
        "record_bytes": args.record_bytes,
        "partitions": args.partitions,
        "max_batch_size": args.max_batch_size,
        "max_batch_wait_ms": args.max_batch_wait_ms,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "backlog_produce_rate_per_s": round(args.records / seconds),
    }
    try:
        if "worker" in args.phases:
            result["worker"] = await run_worker_backlog(bootstrap, args, rid, input_topic, inputs)
        if "bare" in args.phases:
            result["bare_aiokafka"] = await run_bare_pipe(bootstrap, args, rid, input_topic)
        if "best" in args.phases:
            result["best_aiokafka"] = await run_bare_pipe(
                bootstrap, args, rid, input_topic, pipelined=True
            )
        if "worker" in result and "best_aiokafka" in result:
            ratio = result["worker"]["records_per_s"] / result["best_aiokafka"]["records_per_s"]
            result["worker_over_best"] = round(ratio, 3)
            log(f"worker / best aiokafka pipe = {ratio:.2f}")
        if "worker" in result and "bare_aiokafka" in result:
            ratio = result["worker"]["records_per_s"] / result["bare_aiokafka"]["records_per_s"]
            result["worker_over_bare"] = round(ratio, 3)
            log(f"worker / bare pipe = {ratio:.2f}")
        if "latency" in args.phases:
            rate = args.latency_rate or result["worker"]["records_per_s"] / 2
            result["latency_run"] = await run_latency(bootstrap, args, rid, rate)
        if "quix" in args.phases:
            result["quix_streams"] = await run_quix(bootstrap, args, rid, input_topic)
    finally:
        await delete_topics(bootstrap, [input_topic])
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_and_save("worker_throughput", bench, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Where packflow-worker's CPU goes while it drains a backlog: a py-spy profile, summed up.

    .venv/bin/python bench/profile_worker.py --records 200000            # identity
    .venv/bin/python bench/profile_worker.py --workload numpy --nonblocking

py-spy (PyPI) is installed once into ``bench/.venv-tools``. The run: the worker starts on a
fresh input topic and handles 200 warm-up records (imports, connections and the group join
are over); it is then stopped (SIGSTOP) while ``--records`` records are produced, continued
(SIGCONT), and py-spy attaches to it at once (``record --pid --format raw --threads
--nolineno``, idle threads left out; it cannot attach to a stopped process): the samples
cover the drain of a backlog, as in ``worker_throughput.py``'s worker phase, but for its
first ~0.1 s, and nothing of the start-up. py-spy pauses the
worker for each sample unless ``--nonblocking``; attaching needs ptrace permission (root, or
``kernel.yama.ptrace_scope`` 0, or CAP_SYS_PTRACE).

Prints the top ``--top`` functions by own and by total samples (with their share of all
samples), samples per thread and per area (aiokafka, worker, SDK, asyncio...) on stderr;
the JSON document goes to stdout and bench/results/, the raw stacks beside it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _collapsed import read_collapsed, summary
from _common import (
    RESULTS,
    add_backlog_arguments,
    create_topic,
    delete_topics,
    log,
    produce_records,
    read_topic,
    run_and_save,
    run_id,
    throughput,
    wait_for_messages,
)
from _venvs import TOOLS
from _worker_process import WorkerRun, summarise_batches
from _workloads import WORKLOADS

from worker.settings import WorkerSettings

WARMUP_RECORDS = 200


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_backlog_arguments(parser, records=200_000)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="identity")
    parser.add_argument(
        "--max-batch-size", type=int, default=WorkerSettings.model_construct().max_batch_size
    )
    parser.add_argument("--max-batch-wait-ms", type=int, default=20)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    parser.add_argument("--nonblocking", action="store_true", help="py-spy --nonblocking")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames)")
    parser.add_argument(
        "--gil", action="store_true", help="py-spy --gil: only samples holding the GIL"
    )
    return parser.parse_args(argv)


def start_py_spy(args: argparse.Namespace, pid: int, raw: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` attached to ``pid``, writing collapsed stacks to ``raw``."""
    argv = [str(TOOLS.executable("py-spy")), "record", "--pid", str(pid), "--format", "raw"]
    argv += ["--output", str(raw), "--rate", str(args.rate), "--threads", "--nolineno"]
    argv += ["--nonblocking"] if args.nonblocking else []
    argv += ["--native"] if args.native else []
    argv += ["--gil"] if args.gil else []
    # Its banner goes to stdout, which carries this script's JSON: both into one pipe.
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def stop_py_spy(spy: subprocess.Popen[bytes], raw: Path) -> list[str]:
    """SIGINT py-spy (it writes ``raw`` then) and return its last lines of output; raises
    ``RuntimeError`` with them when it wrote nothing (no ptrace permission, say)."""
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        said_bytes, _ = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        said_bytes, _ = spy.communicate()
    said = [line for line in said_bytes.decode(errors="replace").splitlines() if line.strip()]
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote no profile (exit {spy.returncode}): {said[-3:]}")
    return said[-3:]


async def drain_under_py_spy(
    bootstrap: str, args: argparse.Namespace, worker: WorkerRun, raw: Path
) -> dict[str, Any]:
    """Warm the worker up, stop it, produce the backlog, attach py-spy, let it drain."""
    make, size = WORKLOADS[args.workload].make, args.record_bytes
    topics = [worker.output_topic, worker.dlq_topic]
    await produce_records(
        bootstrap, worker.input_topic, WARMUP_RECORDS, record_bytes=size, make=make
    )
    await wait_for_messages(bootstrap, topics, WARMUP_RECORDS, 120, alive=worker.alive)
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        log(f"worker stopped; producing {args.records:,} records ...")
        await produce_records(
            bootstrap,
            worker.input_topic,
            args.records,
            record_bytes=size,
            start=WARMUP_RECORDS,
            make=make,
        )
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    # py-spy cannot attach to a stopped process ("Failed to suspend process"): it attaches
    # right after, missing the drain's first ~0.1 s.
    cpu0, t0 = worker.cpu_seconds(), time.monotonic()
    spy = start_py_spy(args, worker.pid, raw)
    log("worker continued, py-spy attached ...")
    try:
        total = WARMUP_RECORDS + args.records
        await wait_for_messages(bootstrap, topics, total, 600, alive=worker.alive)
    finally:
        said = stop_py_spy(spy, raw)
    cpu, wall = worker.cpu_seconds() - cpu0, time.monotonic() - t0
    return {
        "worker_cpu_s_during_drain": round(cpu, 2),
        "worker_cpu_us_per_msg": round(cpu * 1e6 / args.records, 2),
        "drain_wall_s": round(wall, 2),
        "py_spy_said": said,
    }


def print_summary(found: dict[str, Any]) -> None:
    """The profile's tables on stderr."""
    out = sys.stderr
    print(f"\n{found['samples']:,} samples (idle threads left out)", file=out)
    for title, key in (("own", "top_own"), ("total", "top_total")):
        print(f"\ntop functions by {title} samples:", file=out)
        for row in found[key]:
            print(f"  {row['percent']:5.1f}%  {row['samples']:>6}  {row['function']}", file=out)
    for title, key in (("thread", "threads"), ("area (own samples)", "areas_by_own")):
        print(f"\nby {title}:", file=out)
        for row in found[key]:
            print(f"  {row['percent']:5.1f}%  {row['function']}", file=out)


async def profile(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the worker on a backlog under py-spy and sum the samples up."""
    TOOLS.ensure(log)
    rid = run_id()
    inp, out, dlq = (f"bench-prof-{rid}-{x}" for x in ("in", "out", "dlq"))
    await create_topic(bootstrap, inp, args.partitions)
    await create_topic(bootstrap, out, args.partitions, log_append_time=True)
    await create_topic(bootstrap, dlq, 1)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    raw = RESULTS / f"profile_worker-{args.workload}-{stamp}.collapsed.txt"
    batch = ["--max-batch-size", str(args.max_batch_size)]
    batch += ["--max-batch-wait-ms", str(args.max_batch_wait_ms)]
    worker = WorkerRun(
        bootstrap,
        inp,
        out,
        dlq,
        f"bench-prof-{rid}",
        RESULTS / f"profile-worker-{rid}.log",
        extra_args=batch,
        backend_args=WORKLOADS[args.workload].worker_args,
    )
    load_start = [round(x, 2) for x in os.getloadavg()]
    worker.start()
    try:
        drain = await drain_under_py_spy(bootstrap, args, worker, raw)
    except (TimeoutError, RuntimeError) as exc:
        raise RuntimeError(f"profile failed: {exc}\n{worker.log_tail()}") from exc
    finally:
        code = worker.stop()
    dump = await read_topic(bootstrap, out, with_sources=False)
    await delete_topics(bootstrap, [inp, out, dlq])
    found = summary(read_collapsed(raw), args.top)
    print_summary(found)
    return {
        "bench": "profile_worker",
        "workload": args.workload,
        "records": args.records,
        "py_spy": {
            "rate": args.rate,
            "nonblocking": args.nonblocking,
            "native": args.native,
            "gil": args.gil,
        },
        "py_spy_version": TOOLS.version("py-spy"),
        "raw_stacks": str(raw.relative_to(RESULTS.parent.parent)),
        "load_average_at_start": load_start,
        # The warm-up's outputs are the earliest: left out of the backlog's rate.
        "records_per_s_under_profiler": round(throughput(sorted(dump.timestamps)[WARMUP_RECORDS:])),
        "exit_code_after_sigterm": code,
        **drain,
        "batches": summarise_batches(worker.batch_metrics()),
        "profile": found,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    return run_and_save(f"profile_worker-{args.workload}", profile, args)


if __name__ == "__main__":
    sys.exit(main())

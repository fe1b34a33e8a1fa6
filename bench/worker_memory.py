"""Peak memory of packflow-worker while it drains a large backlog.

    .venv/bin/python bench/worker_memory.py                    # 500,000 messages (full run)
    .venv/bin/python bench/worker_memory.py --records 50000    # quick run

Produces ``--records`` JSON messages (~500 bytes) to a 4-partition topic first, then starts
``packflow-worker`` (identity backend, default settings) on that backlog and samples its
memory from ``/proc/<pid>/status`` (VmRSS every 100 ms; VmHWM, the kernel's own peak) until
every message has an output. Prints peak RSS in MB and throughput as JSON on stdout (also
saved to bench/results/). The in-flight bounds (``--max-in-flight-records`` /
``--max-in-flight-bytes``) are what keeps the peak flat however deep the backlog is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from typing import Any

from _common import (
    BENCH,
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
from _worker_process import WorkerRun, summarise_batches


def proc_status_kb(pid: int) -> dict[str, int]:
    """``VmRSS``/``VmHWM`` (kB) of ``pid`` from /proc (no psutil needed)."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values


async def sample_memory(pid: int, samples: list[tuple[float, int, int]], stop: Any) -> None:
    """Append (seconds, VmRSS kB, VmHWM kB) every 100 ms until ``stop`` is set."""
    t0 = time.monotonic()
    while not stop.is_set():
        status = proc_status_kb(pid)
        if "VmRSS" in status:
            samples.append((time.monotonic() - t0, status["VmRSS"], status.get("VmHWM", 0)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def bench(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """Produce the backlog, run the worker on it while sampling its memory."""
    rid = run_id()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    inp, out, dlq = (f"bench-mem-{rid}-{x}" for x in ("in", "out", "dlq"))
    await create_topic(bootstrap, inp, args.partitions)
    await create_topic(bootstrap, out, args.partitions, log_append_time=True)
    await create_topic(bootstrap, dlq, 1)
    try:
        log(f"producing a backlog of {args.records:,} messages of ~{args.record_bytes} B ...")
        seconds = await produce_records(
            bootstrap, inp, args.records, record_bytes=args.record_bytes
        )
        log(f"produced in {seconds:.1f} s")
        worker = WorkerRun(
            bootstrap, inp, out, dlq, f"bench-mem-{rid}", BENCH / "results" / f"mem-{rid}.log"
        )
        samples: list[tuple[float, int, int]] = []
        stop = asyncio.Event()
        worker.start()
        sampler = asyncio.create_task(sample_memory(worker.pid, samples, stop))
        t0 = time.monotonic()
        try:
            await wait_for_messages(
                bootstrap,
                [out, dlq],
                args.records,
                max(300.0, args.records / 300),
                alive=worker.alive,
            )
            wall = time.monotonic() - t0
            final = proc_status_kb(worker.pid)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"worker failed: {exc}\n{worker.log_tail()}") from exc
        finally:
            stop.set()
            await sampler
            code = worker.stop()
        dump = await read_topic(bootstrap, out, with_sources=False)
        peak_sampled = max((rss for _, rss, _ in samples), default=0)
        idle = samples[0][1] if samples else 0
        result = {
            "bench": "worker_memory",
            "records": args.records,
            "record_bytes": args.record_bytes,
            "partitions": args.partitions,
            "backlog_mb": round(args.records * args.record_bytes / 1e6, 1),
            "peak_rss_mb": round(max(final.get("VmHWM", 0), peak_sampled) / 1024, 1),
            "peak_rss_sampled_mb": round(peak_sampled / 1024, 1),
            "rss_at_first_sample_mb": round(idle / 1024, 1),
            "rss_at_end_mb": round(final.get("VmRSS", 0) / 1024, 1),
            "samples": len(samples),
            "outputs": len(dump.timestamps),
            "records_per_s": round(throughput(dump.timestamps)),
            "wall_s_incl_startup": round(wall, 2),
            "exit_code_after_sigterm": code,
            "batches": summarise_batches(worker.batch_metrics()),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load_at_start,
        }
        log(
            f"peak RSS {result['peak_rss_mb']} MB, {result['records_per_s']:,} records/s, "
            f"exit code {code}"
        )
        return result
    finally:
        await delete_topics(bootstrap, [inp, out, dlq])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_backlog_arguments(parser, records=500_000)
    return run_and_save("worker_memory", bench, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Throughput, CPU per message and latency of packflow-worker beside real ceilings.

    .venv/bin/python bench/worker_throughput.py                          # 200,000 records
    .venv/bin/python bench/worker_throughput.py --records 20000          # quick run
    .venv/bin/python bench/worker_throughput.py --rounds 2 --workload numpy

One sitting, one broker, one backlog of ``--records`` JSON records (~500 bytes) on a
4-partition topic. Each round runs every phase below, each backlog contender reading the
backlog with its own consumer group; the order rotates by one each round so that no
contender always runs first (the latency phase, which needs the worker's rate, closes each
round):

============  =============================================================================
worker        ``packflow-worker`` (subprocess, CLI), the workload's backend, at-least-once
best          the best aiokafka pipe (``_bare_pipe.py --pipelined``: batch API, acks awaited
              while the next batch is fetched, the worker's commit rule), doing the worker's
              job: JSON decoded, the workload's backend, JSON encoded
forward       the same pipe forwarding each value untouched (``--forward-bytes``): the
              transport's ceiling, with no JSON and no backend
bare          the plain aiokafka pipe (send, await every ack, commit, per fetch)
confluent     a confluent-kafka (librdkafka) pipe with the worker's commit rule
              (``_confluent_pipe.py``, venv ``bench/.venv-confluent``)
quix          Quix Streams (``_quix_pipe.py``, venv ``bench/.venv-quix``)
together      the worker and Quix Streams at once, CPU per message over the same window
              (``bench/_together.py``: both meet the same machine)
together_best the worker and the best aiokafka pipe at once, as ``together``
ab            the worker and the worker of ``--baseline`` (another source tree, e.g. a ``git
              worktree`` of an earlier commit) at once, as ``together``: a change measured on
              one machine (only with ``--baseline``; not in the default phases)
perf          the broker's own ceiling: Kafka's ProducerPerformance and ConsumerPerformance
eos           the worker with ``--delivery exactly-once``
latency       a caught-up worker fed at half the worker's records/s: p50/p99 ms
latency_best  the best aiokafka pipe in the worker's place, at the same rate: a reference
============  =============================================================================

``--workload`` picks the backend: ``identity``, ``numpy`` (the example anomaly scorer) or
``busy20us`` (~20 us of Python per record, calibrated here and handed to every contender);
the pipes run the same backend (``bench/_workloads.py``). Every phase reports records/s,
its process's CPU seconds per 1,000 messages and the broker's CPU (``bench/_phase.py``);
the summary holds the issue's ratios and the worker's CPU per message beyond the backend's
own time. Beside the load average the result records what waking a thread costs on this
machine (``bench/_wakeups.py``), the price of the worker's executor hop. Progress and the
summary table go to stderr, the JSON result to stdout (also saved to bench/results/).
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    add_backlog_arguments,
    create_topic,
    delete_topics,
    log,
    produce_records,
    read_input_timestamps,
    run_and_save,
    run_id,
)
from _contenders import pipe_phase, worker_phase
from _cpu import CpuSampler, broker_pid
from _kafka_perf import perf_phase
from _latency import latency_phase
from _phase import Sitting, load_1min
from _report import LATENCY_PHASES, latency_summary, overhead, print_table, ratios, summarise
from _together import ab_phase, together_best_phase, together_phase
from _wakeups import wake_costs
from _workloads import WORKLOADS, Workload, backend_cost

from worker.settings import WorkerSettings

#: Every phase, in the order of round 1 (later rounds rotate it; latency always closes).
PHASES = (
    "worker",
    "best",
    "forward",
    "bare",
    "confluent",
    "quix",
    "together",
    "together_best",
    "perf",
    "eos",
    "latency",
    "latency_best",
)
#: The worker's own defaults (``max_batch_size``), which the bench's follow.
WORKER_DEFAULTS = WorkerSettings.model_construct()
#: Phases run only when asked for by name.
OPT_IN_PHASES = ("ab",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_backlog_arguments(parser, records=200_000)
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=WORKER_DEFAULTS.max_batch_size,
        help="worker and pipes (default: the worker's)",
    )
    parser.add_argument("--max-batch-wait-ms", type=int, default=20, help="worker and pipes")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every phase")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="identity")
    parser.add_argument(
        "--latency-seconds", type=float, default=20.0, help="the latency runs' length"
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        help="records/s of the latency run (default: half the worker's measured throughput)",
    )
    parser.add_argument(
        "--worker-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for every worker (repeat it; --worker-arg=--linger-ms=2)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="the ab phase's other source tree (say, git worktree add /tmp/base HEAD~1)",
    )
    parser.add_argument(
        "--baseline-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for the ab phase's baseline worker only (repeat it)",
    )
    known = (*PHASES, *OPT_IN_PHASES)
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(known)} (default: all but ab)",
    )
    args = parser.parse_args(argv)
    wanted = {x.strip() for x in args.phases.split(",") if x.strip()}
    if wanted - set(known):
        parser.error(f"unknown phases: {', '.join(sorted(wanted - set(known)))}")
    args.phases = [p for p in known if p in wanted]
    if "ab" in args.phases:
        if args.baseline is None:
            parser.error("the ab phase needs --baseline DIR (a packflow source tree)")
        args.baseline = args.baseline.resolve()
        if not (args.baseline / "worker" / "__init__.py").is_file():
            parser.error(f"--baseline {args.baseline}: no worker package there")
    latency = [p for p in args.phases if p in LATENCY_PHASES]
    if latency and "worker" not in args.phases and not args.latency_rate:
        parser.error(f"the {' and '.join(latency)} phase needs the worker phase or --latency-rate")
    if args.records < 100 or args.rounds < 1:
        parser.error("--records must be at least 100 and --rounds at least 1")
    return args


def order_of(round_no: int, phases: list[str]) -> list[str]:
    """Round ``round_no``'s order: the backlog phases rotated by ``round_no - 1``, then the
    latency phases (they need the worker's rate)."""
    backlog = [p for p in phases if p not in LATENCY_PHASES]
    k = (round_no - 1) % len(backlog) if backlog else 0
    return backlog[k:] + backlog[:k] + [p for p in LATENCY_PHASES if p in phases]


async def run_phase(
    sitting: Sitting, name: str, round_no: int, worker_rates: list[float]
) -> dict[str, Any]:
    """One phase of one round, with the load average at its start and end; a failure is
    recorded as ``{"error": ...}`` and the run goes on."""
    log(f"round {round_no}: {name} (load {load_1min():.2f}) ...")
    load_start = load_1min()
    try:
        if name in ("worker", "eos"):
            result = await worker_phase(sitting, round_no, exactly_once=name == "eos")
        elif name == "perf":
            result = await perf_phase(sitting, round_no)
        elif name == "together":
            result = await together_phase(sitting, round_no)
        elif name == "together_best":
            result = await together_best_phase(sitting, round_no)
        elif name == "ab":
            result = await ab_phase(sitting, round_no, sitting.args.baseline)
        elif name in LATENCY_PHASES:
            rate = sitting.args.latency_rate or statistics.median(worker_rates) / 2
            contender = "worker" if name == "latency" else "best"
            result = await latency_phase(sitting, round_no, rate, contender=contender)
        else:
            result = await pipe_phase(sitting, round_no, name)
    except (RuntimeError, TimeoutError, OSError) as exc:
        result = {"error": str(exc)}
    result["load_1min"] = [load_start, load_1min()]
    log(f"round {round_no}: {name}: {describe(result)}")
    return result


def describe(result: dict[str, Any]) -> str:
    """One progress line of a phase's figures."""
    if "error" in result:
        return f"FAILED: {result['error'].splitlines()[0]}"
    if "producer" in result:
        return f"producer {describe(result['producer'])}; consumer {describe(result['consumer'])}"
    if "rows" in result:
        return "; ".join(f"{name}: {describe(row)}" for name, row in result["rows"].items())
    if "latency" in result:
        lat = result["latency"]
        return f"p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms"
    return (
        f"{result.get('records_per_s') or 0:,} records/s, CPU "
        f"{result.get('process_cpu_s_per_1000')} s/1000 msgs, broker "
        f"{result.get('broker_cpu_s_per_1000')} s/1000"
    )


def prepare_workload(workload: Workload) -> dict[str, Any]:
    """Calibrate ``busy20us`` once here and hand its loop count to every contender."""
    if workload.name != "busy20us":
        return {}
    import _busy

    os.environ[_busy.LOOPS_ENV] = str(_busy.LOOPS)
    return {"loops": _busy.LOOPS, "cpu_us_per_record": round(_busy.record_us(_busy.LOOPS), 2)}


async def run_rounds(sitting: Sitting) -> list[dict[str, Any]]:
    """Every round of every phase, in rotating order."""
    rounds: list[dict[str, Any]] = []
    worker_rates: list[float] = []
    for round_no in range(1, sitting.args.rounds + 1):
        order = order_of(round_no, sitting.args.phases)
        phases: dict[str, Any] = {}
        for name in order:
            phases[name] = await run_phase(sitting, name, round_no, worker_rates)
            if name == "worker" and phases[name].get("records_per_s"):
                worker_rates.append(phases[name]["records_per_s"])
        rounds.append({"round": round_no, "order": order, "phases": phases})
    return rounds


async def bench(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run every round on one broker and return the result document."""
    rid, workload = run_id(), WORKLOADS[args.workload]
    busy = prepare_workload(workload)
    input_topic = f"bench-{rid}-in"
    await create_topic(bootstrap, input_topic, args.partitions)
    log(f"producing {args.records:,} {workload.name} records of ~{args.record_bytes} B ...")
    seconds = await produce_records(
        bootstrap, input_topic, args.records, record_bytes=args.record_bytes, make=workload.make
    )
    inputs = await read_input_timestamps(bootstrap, input_topic)
    sample = [workload.make(i, args.record_bytes) for i in range(min(args.records, 20_000))]
    cost = backend_cost(workload, sample, args.max_batch_size)
    log(f"backend alone: {cost['cpu_us_per_record']} us CPU per record (in this process)")
    wakes = await asyncio.to_thread(wake_costs)
    pinned = "".join(
        f", {where.replace('_', ' ')} {wakes[where]['cpu_us']}"
        for where in ("same_cpu", "other_cpu")
        if where in wakes
    )
    log(
        f"waking a thread: {wakes['thread_round_trip']['cpu_us']} us CPU per round trip"
        f"{pinned}; an executor hop {wakes['executor_hop']['cpu_us']} us"
    )
    pid = broker_pid(bootstrap)
    result: dict[str, Any] = {
        "bench": "worker_throughput",
        "workload": workload.name,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        **{k: getattr(args, k) for k in ("records", "record_bytes", "partitions", "rounds")},
        **{k: getattr(args, k) for k in ("max_batch_size", "max_batch_wait_ms")},
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "backlog_produce_rate_per_s": round(args.records / seconds),
        "backend_cost": cost,
        "wake_costs": wakes,
        "broker_pid": pid,
        **({"busy20us": busy} if busy else {}),
    }
    try:
        async with CpuSampler({"broker": pid} if pid else {}) as cpu:
            sitting = Sitting(bootstrap, args, rid, input_topic, workload, cpu, inputs)
            result["by_round"] = await run_rounds(sitting)
    finally:
        await delete_topics(bootstrap, [input_topic])
    result["summary"] = summarise(result["by_round"])
    result["ratios"] = ratios(result["summary"], result["by_round"])
    result["latency"] = latency_summary(result["by_round"])
    result["latency_best"] = latency_summary(result["by_round"], "latency_best")
    batches = [r["phases"].get("worker", {}).get("batches") for r in result["by_round"]]
    result["overhead"] = overhead(result["summary"], cost, batches)
    print_table(result)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = parse_args(argv)
    return run_and_save(f"worker_throughput-{args.workload}", bench, args)


if __name__ == "__main__":
    sys.exit(main())

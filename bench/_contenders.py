"""The backlog contenders: how each is started on the shared backlog, and its extra figures.

=========  ===========================================================================
phase      contender
=========  ===========================================================================
worker     ``packflow-worker`` (subprocess, CLI), at-least-once
eos        the same with ``--delivery exactly-once``
best       ``_bare_pipe.py --pipelined``: the best aiokafka pipe
forward    the same with ``--forward-bytes``: values forwarded untouched, no JSON
bare       ``_bare_pipe.py``: send, await acks, commit, per fetch
confluent  ``_confluent_pipe.py`` in ``bench/.venv-confluent`` (librdkafka)
quix       ``_quix_pipe.py`` in ``bench/.venv-quix`` (Quix Streams)
=========  ===========================================================================

Each reads the same backlog with its own consumer group and writes its own output topic
(the `perf` phase, Kafka's own tools, is in ``_kafka_perf.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from _child import Child
from _common import BENCH, TopicDump, create_topic, delete_topics, latencies, log
from _phase import Sitting, measure_drain
from _venvs import CONFLUENT, QUIX, main_version, pipe_env
from _worker_process import WorkerRun, summarise_batches


def batch_args(sitting: Sitting) -> list[str]:
    """The batch options the worker and every pipe run with."""
    args = sitting.args
    return [
        "--max-batch-size",
        str(args.max_batch_size),
        "--max-batch-wait-ms",
        str(args.max_batch_wait_ms),
    ]


def worker_args(sitting: Sitting) -> list[str]:
    """The options every worker of a sitting runs with: the batch options and any
    ``--worker-arg`` (say ``--kafka-option=consumer.fetch_min_bytes=65536``)."""
    return [*batch_args(sitting), *sitting.args.worker_arg]


async def worker_phase(
    sitting: Sitting, round_no: int, *, exactly_once: bool = False
) -> dict[str, Any]:
    """The worker drains the backlog (``exactly_once``: the ``eos`` phase)."""
    phase = "eos" if exactly_once else "worker"
    result, _ = await worker_drain(sitting, round_no, phase, exactly_once=exactly_once)
    return result


async def worker_drain(
    sitting: Sitting,
    round_no: int,
    phase: str,
    *,
    exactly_once: bool = False,
    source: Path | None = None,
    extra_args: list[str] | None = None,
) -> tuple[dict[str, Any], TopicDump]:
    """The worker drains the backlog as phase ``phase``: its figures and its outputs.

    ``source`` runs another source tree's worker (:class:`~_worker_process.WorkerRun`);
    ``extra_args`` come after the sitting's worker arguments (the later one wins)."""
    out = await sitting.output_topic(sitting.topic(phase, round_no, "out"))
    dlq = sitting.topic(phase, round_no, "dlq")
    await create_topic(sitting.bootstrap, dlq, 1)
    delivery = ["--delivery", "exactly-once"] if exactly_once else []
    worker = WorkerRun(
        sitting.bootstrap,
        sitting.input_topic,
        out,
        dlq,
        sitting.group(phase, round_no),
        sitting.log_path(phase, round_no),
        extra_args=[*worker_args(sitting), *delivery, *(extra_args or [])],
        backend_args=sitting.workload.worker_args,
        source=source,
    )
    try:
        child = worker.start()
        try:
            result, dump = await measure_drain(
                sitting,
                phase,
                child,
                out,
                extra_topics=() if exactly_once else (dlq,),
                commit_group=worker.group_id if exactly_once else None,
                with_sources=True,
            )
        finally:
            result_code = worker.stop()
    finally:
        await delete_topics(sitting.bootstrap, [out, dlq])
    # Output minus input timestamp of a backlog: mostly the time spent waiting in it; the
    # latency phase measures a caught-up worker.
    result["latency_under_backlog"] = latencies(sitting.inputs, dump)
    result["exit_code_after_sigterm"] = result_code
    result["batches"] = summarise_batches(worker.batch_metrics())
    return result, dump


def _pipe_argv(sitting: Sitting, group: str, out: str, input_topic: str | None) -> list[str]:
    """The arguments every reference pipe takes (``input_topic``: the backlog's if None)."""
    return [
        "--bootstrap",
        sitting.bootstrap,
        "--input-topic",
        input_topic or sitting.input_topic,
        "--output-topic",
        out,
        "--group-id",
        group,
        "--workload",
        sitting.workload.name,
    ]


#: The aiokafka pipes (``_bare_pipe.py``) and their flags.
_AIOKAFKA_PIPES: dict[str, tuple[str, ...]] = {
    "best": ("--pipelined",),
    "forward": ("--pipelined", "--forward-bytes"),
    "bare": (),
}
_VENV_PIPES = {
    "confluent": (CONFLUENT, "_confluent_pipe.py", "confluent-kafka"),
    "quix": (QUIX, "_quix_pipe.py", "quixstreams"),
}


def ensure_venv(kind: str) -> None:
    """Install the venv of pipe ``kind`` (confluent, quix) unless it is there;
    ``RuntimeError`` when that fails."""
    venv = _VENV_PIPES[kind][0]
    try:
        venv.ensure(log)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"could not install {venv.requirements[0]}: {exc}") from exc


def pipe_command(
    sitting: Sitting,
    kind: str,
    group: str,
    out: str,
    *,
    input_topic: str | None = None,
    count: int | None = None,
) -> tuple[list[str], str]:
    """The command line of reference pipe ``kind`` and the client library it runs (name and
    version): it reads ``input_topic`` (the backlog's if None) and stops after ``count``
    records (``--records`` if None). Installs the pipe's venv on first use; ``RuntimeError``
    when that fails."""
    argv = _pipe_argv(sitting, group, out, input_topic)
    records = sitting.args.records if count is None else count
    count_args = ["--count", str(records), *batch_args(sitting)]
    if kind in _AIOKAFKA_PIPES:
        flags = _AIOKAFKA_PIPES[kind]
        command = [sys.executable, str(BENCH / "_bare_pipe.py"), *argv, *count_args, *flags]
        return command, f"aiokafka {main_version('aiokafka')}"
    venv, script, dist = _VENV_PIPES[kind]
    ensure_venv(kind)
    # Quix Streams runs until stopped; the others stop after --count records.
    extra = [] if kind == "quix" else count_args
    command = [str(venv.python), str(BENCH / script), *argv, *extra]
    return command, f"{dist} {venv.version(dist)}"


def pipe_child(command: list[str], log_path: Path) -> Child:
    """Start a reference pipe's ``command`` (from :func:`pipe_command`) in bench/."""
    return Child(command, cwd=BENCH, env=pipe_env(), log_path=log_path)


async def pipe_phase(sitting: Sitting, round_no: int, kind: str) -> dict[str, Any]:
    """A reference pipe drains the backlog: ``kind`` is best, forward, bare, confluent or
    quix."""
    result, _ = await pipe_drain(sitting, round_no, kind, kind)
    return result


async def pipe_drain(
    sitting: Sitting, round_no: int, kind: str, phase: str
) -> tuple[dict[str, Any], TopicDump]:
    """Reference pipe ``kind`` drains the backlog as phase ``phase``: figures and outputs."""
    out = await sitting.output_topic(sitting.topic(phase, round_no, "out"))
    try:
        command, library = pipe_command(sitting, kind, sitting.group(phase, round_no), out)
        child = pipe_child(command, sitting.log_path(phase, round_no))
        try:
            result, dump = await measure_drain(sitting, phase, child, out)
        finally:
            child.stop()
    finally:
        await delete_topics(sitting.bootstrap, [out])
    result["client"] = library
    return result, dump

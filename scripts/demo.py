"""`make demo`: packflow-worker running the example anomaly scorer on a real local Kafka.

Steps: start a local broker (or reuse a running one), create the demo topics, start
``packflow-worker --project examples/anomaly_scorer`` as a subprocess, produce sample
messages (normal readings, anomalies, an array message and four kinds of bad input), wait
until every input has an output or a dead letter, print some outputs, one metric event and
the dead letters, then stop the worker with SIGTERM and stop the broker it started.

Run it with the project's virtual environment: ``.venv/bin/python scripts/demo.py``.
``--bootstrap-servers HOST:PORT`` uses a broker you already run instead.
:func:`run_demo` is the core, reused by ``tests/examples/test_demo.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from worker.pipeline import SOURCE_HEADER, source_of

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "examples" / "anomaly_scorer"
DEFAULT_STATE_DIR = REPO / ".kafka" / "demo"
INPUT_PARTITIONS = 2

Say = Callable[[str], None]


class DemoError(Exception):
    """The demo could not complete; the message says which step failed and why."""


@dataclass(frozen=True)
class DemoTopics:
    """The four topics one demo run uses (fresh names per run, so reruns never mix)."""

    input: str
    output: str
    dlq: str
    metrics: str

    @classmethod
    def fresh(cls, prefix: str = "demo") -> DemoTopics:
        """Topic names with a random run id, e.g. ``demo-1a2b3c-input``."""
        run = f"{prefix}-{uuid.uuid4().hex[:6]}"
        return cls(f"{run}-input", f"{run}-output", f"{run}-dlq", f"{run}-metrics")


@dataclass(frozen=True)
class DemoInput:
    """One message the demo produces, and what the worker should do with it."""

    case: str
    key: bytes
    value: bytes
    expect_dead_letter: bool


@dataclass
class DemoResult:
    """What one demo run observed (used by the e2e test)."""

    inputs: dict[tuple[int, int], DemoInput] = field(default_factory=dict)
    outputs: dict[tuple[int, int], Any] = field(default_factory=dict)
    output_headers: dict[tuple[int, int], dict[str, bytes]] = field(default_factory=dict)
    dead_letters: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    metric_events: list[dict[str, Any]] = field(default_factory=list)
    worker_events: list[dict[str, Any]] = field(default_factory=list)
    worker_exit_code: int | None = None


# ---------------------------------------------------------------------------------------
# sample data


def sample_inputs(project: Path = PROJECT) -> list[DemoInput]:
    """The demo's messages: 8 normal readings, 3 anomalies, 1 array message, 4 bad ones."""
    params = json.loads((project / "params.json").read_text())
    features: list[str] = params["features"]
    mean = dict(zip(features, params["mean"], strict=True))
    std = dict(zip(features, params["std"], strict=True))

    def reading(machine: str, **z: float) -> dict[str, Any]:
        values = {f: round(mean[f] + z.get(f, 0.0) * std[f], 2) for f in features}
        return {"id": machine, **values}

    def msg(case: str, key: str, value: Any, dead: bool = False) -> DemoInput:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return DemoInput(case, key.encode(), raw, dead)

    # Normal readings wander within 2 standard deviations of the healthy means.
    rng = np.random.default_rng(2026)
    normal = []
    for i in range(8):
        machine = f"m-{i % 4 + 1:02d}"
        z = dict(zip(features, rng.uniform(-2.0, 2.0, len(features)).tolist(), strict=True))
        normal.append(msg("normal", machine, reading(machine, **z)))
    anomalies = [
        msg("anomaly", "m-01", reading("m-01", temperature_c=6.5)),
        msg("anomaly", "m-02", reading("m-02", pressure_kpa=-8.0)),
        msg("anomaly", "m-03", reading("m-03", vibration_mm_s=9.0, current_a=3.0)),
    ]
    batch = [reading(f"m-0{k}", temperature_c=0.2 * k) for k in (1, 2, 3)]
    missing = reading("m-04")
    del missing["vibration_mm_s"]
    bad = [
        msg("not JSON", "bad-1", b'{"id": "m-01", "temperature_c": 65.2,', dead=True),
        msg("not UTF-8", "bad-2", b'{"id": "m-02", "note": "\xff\xfe"}', dead=True),
        msg("JSON scalar", "bad-3", b"42", dead=True),
        msg("missing feature", "m-04", missing, dead=True),
    ]
    return [
        *normal[:4],
        anomalies[0],
        bad[0],
        *normal[4:6],
        msg("array of 3", "m-05", batch),
        bad[1],
        anomalies[1],
        bad[2],
        *normal[6:],
        anomalies[2],
        bad[3],
    ]


# ---------------------------------------------------------------------------------------
# worker subprocess


def worker_command(project: Path) -> list[str]:
    """``packflow-worker`` from this interpreter's environment (``python -m worker`` if absent)."""
    script = Path(sys.executable).parent / "packflow-worker"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "worker"]
    return [*base, "--project", str(project), "--health-port", "0"]


def worker_env(bootstrap: str, topics: DemoTopics) -> dict[str, str]:
    """The worker's settings as ``PACKFLOW_*`` environment variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACKFLOW_")}
    env.update(
        PACKFLOW_BOOTSTRAP_SERVERS=bootstrap,
        PACKFLOW_INPUT_TOPIC=topics.input,
        PACKFLOW_OUTPUT_TOPIC=topics.output,
        PACKFLOW_DLQ_TOPIC=topics.dlq,
        PACKFLOW_METRICS_TOPIC=topics.metrics,
        PACKFLOW_GROUP_ID=f"{topics.input}-workers",
        PACKFLOW_WORKER_ID="demo-worker-1",
        PACKFLOW_LOG_LEVEL="INFO",
    )
    return env


class WorkerProcess:
    """A ``packflow-worker`` subprocess whose JSON stdout events are collected as they come."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path | None) -> None:
        self.cmd = cmd
        self.env = env
        self.log_path = log_path
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.started = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._log: Any = None

    async def start(self, wait_seconds: float) -> dict[str, Any]:
        """Start the worker; return its ``worker_started`` event or raise :class:`DemoError`."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("w")
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd,
            env=self.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # our cleanup, not the terminal's Ctrl-C, stops it
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.proc.stdout, is_stdout=True)),
            asyncio.create_task(self._read(self.proc.stderr, is_stdout=False)),
        ]
        started = asyncio.create_task(self.started.wait())
        exited = asyncio.create_task(self.proc.wait())
        done, _ = await asyncio.wait(
            {started, exited}, timeout=wait_seconds, return_when="FIRST_COMPLETED"
        )
        started.cancel()
        exited.cancel()
        if self.started.is_set():
            return next(e for e in self.events if e.get("event") == "worker_started")
        if exited in done:
            await asyncio.gather(*self._readers, return_exceptions=True)
            raise DemoError(
                f"packflow-worker exited with code {self.proc.returncode} before starting:\n"
                + self.stderr_tail()
            )
        raise DemoError(
            f"packflow-worker did not log worker_started within {wait_seconds:.0f} s\n"
            + self.stderr_tail()
        )

    async def _read(self, stream: asyncio.StreamReader, *, is_stdout: bool) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            if self._log is not None:
                self._log.write(line + "\n")
            if not is_stdout:
                self.stderr.append(line)
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.events.append(event)
                if event.get("event") == "worker_started":
                    self.started.set()

    def stderr_tail(self, lines: int = 15) -> str:
        """The last lines the worker wrote to stderr, indented, for error messages."""
        tail = self.stderr[-lines:] or ["(nothing on stderr)"]
        return "\n".join("    " + line for line in tail)

    async def _stop(self, wait_seconds: float) -> bool:
        """SIGTERM the worker and wait; SIGKILL it past ``wait_seconds``. True if killed."""
        if self.proc is None or self.proc.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), wait_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
            return True
        return False

    async def terminate(self, wait_seconds: float) -> int:
        """SIGTERM the worker and wait for it; SIGKILL it if it outlives ``wait_seconds``."""
        assert self.proc is not None
        if await self._stop(wait_seconds):
            raise DemoError(
                f"packflow-worker did not stop within {wait_seconds:.0f} s of SIGTERM (killed)"
            )
        await asyncio.gather(*self._readers, return_exceptions=True)
        return self.proc.returncode if self.proc.returncode is not None else -1

    async def close(self) -> None:
        """Stop the worker however things went (idempotent); used on errors and Ctrl-C."""
        await self._stop(10)
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._log is not None:
            self._log.close()
            self._log = None


# ---------------------------------------------------------------------------------------
# Kafka helpers


async def create_topics(bootstrap: str, topics: DemoTopics) -> None:
    """Create the demo topics (input with several partitions) and wait until they exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(topics.input, num_partitions=INPUT_PARTITIONS, replication_factor=1),
                NewTopic(topics.output, num_partitions=INPUT_PARTITIONS, replication_factor=1),
                NewTopic(topics.dlq, num_partitions=1, replication_factor=1),
                NewTopic(topics.metrics, num_partitions=1, replication_factor=1),
            ]
        )
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, topics: DemoTopics) -> None:
    """Delete the demo topics (best effort: the demo must not fail on cleanup)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    names = [topics.input, topics.output, topics.dlq, topics.metrics]
    with contextlib.suppress(Exception):  # leftover topics are harmless
        try:
            await asyncio.wait_for(admin.start(), 10)
            await asyncio.wait_for(admin.delete_topics(names), 10)
        finally:
            await admin.close()


async def produce(
    bootstrap: str, topic: str, inputs: list[DemoInput]
) -> dict[tuple[int, int], DemoInput]:
    """Send ``inputs`` in order; return them by the (partition, offset) they landed at."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        placed: dict[tuple[int, int], DemoInput] = {}
        for item in inputs:
            meta = await producer.send_and_wait(
                topic,
                item.value,
                key=item.key,
                headers=[("demo-case", item.case.encode())],
            )
            placed[(meta.partition, meta.offset)] = item
        return placed
    finally:
        await producer.stop()


async def collect_results(
    bootstrap: str, topics: DemoTopics, result: DemoResult, wait_seconds: float
) -> None:
    """Read outputs, dead letters and metric events until every input is accounted for.

    Done when every input has an output or a dead letter and the metric events cover every
    input message (the worker publishes one event per batch).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topics.output, p) for p in range(INPUT_PARTITIONS)] + [
            TopicPartition(topics.dlq, 0),
            TopicPartition(topics.metrics, 0),
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + wait_seconds
        while True:
            accounted = len(result.outputs) + len(result.dead_letters)
            # Each input message is in exactly one batch, and each batch has one metric event.
            measured = sum(e.get("batch_size") or 0 for e in result.metric_events)
            if accounted >= len(result.inputs) and measured >= len(result.inputs):
                return
            if time.monotonic() > deadline:
                missing = sorted(
                    f"{item.case} (partition {p}, offset {o})"
                    for (p, o), item in result.inputs.items()
                    if (p, o) not in result.outputs and (p, o) not in result.dead_letters
                )
                raise DemoError(
                    f"after {wait_seconds:.0f} s, {len(missing)} inputs have no output nor a "
                    f"dead letter: {', '.join(missing) or 'none'}; metric events seen: "
                    f"{len(result.metric_events)} covering {measured} messages"
                )
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for rec in records:
                    _accept(tp.topic, rec, topics, result)
    finally:
        await consumer.stop()


def _accept(topic: str, rec: Any, topics: DemoTopics, result: DemoResult) -> None:
    if topic == topics.output:
        found = source_of(rec.headers)
        if found is None:
            raise DemoError(f"output {rec.partition}@{rec.offset} has no {SOURCE_HEADER} header")
        source = found[1:]
        result.outputs[source] = json.loads(rec.value)
        result.output_headers[source] = {k: v for k, v in rec.headers}
    elif topic == topics.dlq:
        letter = json.loads(rec.value)
        src = letter["source"]
        result.dead_letters[(int(src["partition"]), int(src["offset"]))] = letter
    elif topic == topics.metrics:
        event = json.loads(rec.value)
        if event.get("event") == "batch_metrics":  # not the worker_starting event before them
            result.metric_events.append(event)


def check_expectations(result: DemoResult) -> list[str]:
    """Inputs that did not end where the demo expects (output vs dead letter)."""
    wrong = []
    for (p, o), item in sorted(result.inputs.items()):
        got_dead = (p, o) in result.dead_letters
        if (p, o) in result.outputs and got_dead:
            wrong.append(f"{item.case} at {p}@{o} has both an output and a dead letter")
        elif got_dead != item.expect_dead_letter:
            expected = "a dead letter" if item.expect_dead_letter else "an output"
            wrong.append(f"{item.case} at {p}@{o} should have produced {expected}")
    return wrong


# ---------------------------------------------------------------------------------------
# printing


def _display(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _brief(output: Any) -> str:
    """An output record without its per-feature z-scores, on one line."""
    if isinstance(output, list):
        return "[" + ", ".join(_brief(o) for o in output) + "]"
    if isinstance(output, dict):
        kept = {k: v for k, v in output.items() if k != "z_scores"}
        return json.dumps(kept, separators=(", ", ": "))
    return json.dumps(output)


def print_results(result: DemoResult, say: Say) -> None:
    """Print a few outputs, one metric event and every dead letter, readably."""
    say("")
    say("Outputs, one per input message (input partition@offset, case -> output value):")
    ordered = sorted(k for k in result.inputs if k in result.outputs)
    if ordered:
        first = ordered[0]
        headers = result.output_headers.get(first, {})
        say(f"  {first[0]}@{first[1]:<3} {result.inputs[first].case:<11} -> (in full)")
        for line in json.dumps(result.outputs[first], indent=2).splitlines():
            say("        " + line)
        say(
            "        headers: "
            + ", ".join(f"{k}={v.decode(errors='replace')}" for k, v in headers.items())
        )
    shown_normal = 1
    hidden = 0
    for p, o in ordered[1:]:
        item = result.inputs[(p, o)]
        if item.case == "normal" and shown_normal >= 3:
            hidden += 1
            continue
        shown_normal += item.case == "normal"
        say(f"  {p}@{o:<3} {item.case:<11} -> {_brief(result.outputs[(p, o)])}")
    if hidden:
        say(f"  ... and {hidden} more normal readings (z_scores left out above)")
    say("")
    say("One metric event (from the metrics topic; the worker also logs it on stdout):")
    event = max(result.metric_events, key=lambda e: e.get("batch_size") or 0)
    for line in json.dumps(event, indent=2).splitlines():
        say("  " + line)
    say("")
    say("Dead letters (input partition@offset, case -> error):")
    for (p, o), letter in sorted(result.dead_letters.items()):
        item = result.inputs.get((p, o))
        error = letter.get("error", {})
        original = base64.b64decode(letter.get("value") or b"")
        say(f"  {p}@{o:<3} {item.case if item else '?'}: step={error.get('step')!r}")
        say(f"         {error.get('type')}: {error.get('message')}")
        say(f"         original value (base64-decoded): {original[:80]!r}")


# ---------------------------------------------------------------------------------------
# the demo


async def run_demo(
    bootstrap: str,
    *,
    say: Say = print,
    project: Path = PROJECT,
    wait_seconds: float = 60.0,
    worker_log: Path | None = None,
    cleanup_topics: bool = True,
    clock_start: float | None = None,
) -> DemoResult:
    """Run the demo against the broker at ``bootstrap``; raise :class:`DemoError` on failure.

    Every wait is bounded by ``wait_seconds`` seconds. The worker is stopped (SIGTERM, then
    SIGKILL) however the run ends, and the demo topics are deleted when ``cleanup_topics``.
    Progress lines show seconds since ``clock_start`` (a ``time.monotonic()`` value).
    """
    t0 = time.monotonic() if clock_start is None else clock_start
    topics = DemoTopics.fresh()
    result = DemoResult()

    def step(text: str) -> None:
        say(f"[{time.monotonic() - t0:5.1f}s] {text}")

    await create_topics(bootstrap, topics)
    step(
        f"Created topics {topics.input} ({INPUT_PARTITIONS} partitions), {topics.output}, "
        f"{topics.dlq}, {topics.metrics}"
    )
    cmd = worker_command(project)
    worker = WorkerProcess(cmd, worker_env(bootstrap, topics), worker_log)
    try:
        shown = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))
        step(f"Starting worker: {shown.replace(str(REPO) + os.sep, '')}")
        started = await worker.start(wait_seconds)
        step(
            f"Worker started (pid {worker.proc.pid if worker.proc else '?'}, "
            f"health port {started.get('health_port')})"
            + (f"; its log: {_display(worker_log)}" if worker_log else "")
        )
        inputs = sample_inputs(project)
        result.inputs = await produce(bootstrap, topics.input, inputs)
        counts = collections.Counter(item.case for item in inputs)
        step(
            f"Produced {len(inputs)} messages to {topics.input}: "
            + ", ".join(f"{n} {case}" for case, n in counts.items())
        )
        await collect_results(bootstrap, topics, result, wait_seconds)
        step(
            f"All {len(result.inputs)} inputs accounted for: {len(result.outputs)} outputs, "
            f"{len(result.dead_letters)} dead letters, {len(result.metric_events)} metric events"
        )
        wrong = check_expectations(result)
        print_results(result, say)
        say("")
        if wrong:
            raise DemoError("unexpected results:\n  " + "\n  ".join(wrong))
        step("Stopping the worker with SIGTERM ...")
        result.worker_exit_code = await worker.terminate(wait_seconds=30)
        if result.worker_exit_code != 0:
            raise DemoError(
                f"packflow-worker exited with code {result.worker_exit_code} after SIGTERM "
                "(expected 0):\n" + worker.stderr_tail()
            )
        step("Worker exited 0")
        return result
    finally:
        result.worker_events = worker.events
        await worker.close()
        if cleanup_topics:
            await delete_topics(bootstrap, topics)


# ---------------------------------------------------------------------------------------
# broker and command line


def running_broker(state_dirs: list[Path]) -> str | None:
    """The bootstrap address of a local broker already running from one of ``state_dirs``."""
    from kafka_local import KafkaLocalError, LocalKafka

    for state_dir in state_dirs:
        broker = LocalKafka(state_dir)
        if broker.is_running():
            with contextlib.suppress(KafkaLocalError):
                return broker.bootstrap_servers
    return None


async def _main_async(bootstrap: str, say: Say, wait_seconds: float, t0: float) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    # SIGTERM (e.g. from a CI runner) cleans up like Ctrl-C does.
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    await run_demo(
        bootstrap,
        say=say,
        wait_seconds=wait_seconds,
        worker_log=DEFAULT_STATE_DIR.parent / "demo-worker.log",
        clock_start=t0,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``make demo``); returns the process exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--bootstrap-servers", help="use this running broker instead of starting one"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="local broker state folder"
    )
    parser.add_argument(
        "--own-broker",
        action="store_true",
        help="start a broker for the demo even when a local one already runs",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="bound for each wait (s)")
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(text, flush=True)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGTERM outside the event loop cleans up like Ctrl-C does (the loop has its own).
    signal.signal(signal.SIGTERM, interrupted)
    t0 = time.monotonic()
    say("packflow demo: packflow-worker + examples/anomaly_scorer on a local Kafka broker")
    sys.path.insert(0, str(REPO / "scripts"))
    from kafka_local import DEFAULT_STATE_DIR as BROKER_STATE_DIR
    from kafka_local import KafkaLocalError, LocalKafka

    broker: LocalKafka | None = None
    bootstrap: str | None = args.bootstrap_servers
    try:
        # A broker `scripts/kafka start` runs, or one a previous demo left, is reused.
        reuse = [args.state_dir] if args.own_broker else [BROKER_STATE_DIR, args.state_dir]
        bootstrap = args.bootstrap_servers or running_broker(reuse)
        if bootstrap:
            say(f"[  0.0s] Using the Kafka broker at {bootstrap}")
        else:
            say(f"[  0.0s] Starting a local Kafka broker (state in {args.state_dir}) ...")
            broker = LocalKafka(args.state_dir, tie_to_parent=True, announce=say)
            bootstrap = broker.start()
            say(f"[{time.monotonic() - t0:5.1f}s] Kafka broker up at {bootstrap}")
        try:
            asyncio.run(_main_async(bootstrap, say, args.timeout, t0))
        finally:
            signal.signal(signal.SIGTERM, interrupted)
    except (DemoError, KafkaLocalError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"demo: error: Kafka at {bootstrap}: {exc!r}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("demo: interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        if broker is not None and broker.is_running():
            say("Stopping the local Kafka broker ...")
            broker.stop()
    say(f"Demo finished in {time.monotonic() - t0:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The worker as a process: SIGTERM mid-stream drains, commits and exits 0; nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from tests.e2e.conftest import committed, consume, produce, wait_for

pytestmark = pytest.mark.kafka

BACKEND = """
import time

from packflow import InferenceBackend


class Backend(InferenceBackend):
    def execute(self, inputs):
        time.sleep(0.02)
        return [dict(record, seen=True) for record in inputs]
"""


class WorkerProcess:
    """A ``python -m worker`` subprocess whose stdout lines are parsed as JSON as they come."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.events: list[dict] = []
        self.bad_lines: list[bytes] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            cwd=self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            try:
                self.events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                self.bad_lines.append(line)

    def named(self, event: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == event]

    async def stop(self, sig: int = signal.SIGTERM, within: float = 40.0) -> int:
        assert self.proc is not None
        assert self._reader is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), within)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        await self._reader
        return code

    async def stderr(self) -> str:
        assert self.proc is not None
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()


async def test_sigterm_mid_stream_exits_0_and_a_restart_leaves_nothing_lost(
    kafka_bootstrap, topics, tmp_path
):
    names = await topics(2)
    (tmp_path / "pipe.py").write_text(BACKEND)
    env = {
        **os.environ,
        "PACKFLOW_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PACKFLOW_INPUT_TOPIC": names["input_topic"],
        "PACKFLOW_OUTPUT_TOPIC": names["output_topic"],
        "PACKFLOW_DLQ_TOPIC": names["dlq_topic"],
        "PACKFLOW_GROUP_ID": f"g-{uuid.uuid4().hex[:10]}",
        "PACKFLOW_BACKEND": "pipe:Backend",
        "PACKFLOW_HEALTH_PORT": "0",
        "PACKFLOW_MAX_BATCH_SIZE": "40",
    }
    total = 3000
    messages = [(f"k{i % 13}".encode(), orjson.dumps({"id": i})) for i in range(total)]
    await produce(kafka_bootstrap, names["input_topic"], messages)

    first = WorkerProcess(tmp_path, env)
    await first.start()
    await wait_for(lambda: len(first.named("batch_metrics")) >= 3, 60, "a few batches")
    assert await first.stop() == 0, await first.stderr()
    assert not first.bad_lines, first.bad_lines[:3]
    (started,) = first.named("worker_started")
    assert isinstance(started["health_port"], int)
    assert started["health_port"] > 0
    (stopped,) = first.named("worker_stopped")
    assert stopped["clean"] is True
    done_first = sum(e["batch_size"] for e in first.named("batch_metrics"))
    assert 0 < done_first < total, "SIGTERM did not land mid-stream"

    second = WorkerProcess(tmp_path, env)
    await second.start()
    outputs = await consume(kafka_bootstrap, names["output_topic"], total, within=90, settle=1.0)
    assert await second.stop(signal.SIGINT) == 0, await second.stderr()
    sources = [dict(o.headers)["packflow-source"] for o in outputs]
    assert len(sources) == total, "an input was lost or duplicated"
    assert len(set(sources)) == total
    assert sorted(orjson.loads(o.value)["id"] for o in outputs) == list(range(total))
    done_second = sum(e["batch_size"] for e in second.named("batch_metrics"))
    assert done_first + done_second == total


STUCK = """
import time

from packflow import InferenceBackend


class Backend(InferenceBackend):
    def execute(self, inputs):
        print('{"event": "execute_entered"}', flush=True)
        time.sleep(60)
        return inputs
"""


async def test_a_second_signal_stops_at_once_without_committing(kafka_bootstrap, topics, tmp_path):
    names = await topics(1)
    (tmp_path / "stuck.py").write_text(STUCK)
    group = f"g-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "PACKFLOW_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PACKFLOW_INPUT_TOPIC": names["input_topic"],
        "PACKFLOW_OUTPUT_TOPIC": names["output_topic"],
        "PACKFLOW_DLQ_TOPIC": names["dlq_topic"],
        "PACKFLOW_GROUP_ID": group,
        "PACKFLOW_BACKEND": "stuck:Backend",
        "PACKFLOW_HEALTH_PORT": "0",
        "PACKFLOW_SHUTDOWN_TIMEOUT_SECONDS": "120",
    }
    await produce(kafka_bootstrap, names["input_topic"], [(None, b'{"id": 1}')])
    proc = WorkerProcess(tmp_path, env)
    await proc.start()
    await wait_for(lambda: proc.named("execute_entered"), 60, "the stuck execute()")
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGTERM)
    await wait_for(lambda: proc.named("worker_stopping"), 10, "the first signal's effect")
    assert await proc.stop(signal.SIGTERM, within=15) == 1
    (stopped,) = proc.named("worker_stopped")
    assert stopped["clean"] is False
    positions = await committed(kafka_bootstrap, group, names["input_topic"], 1)
    assert positions == {0: None}

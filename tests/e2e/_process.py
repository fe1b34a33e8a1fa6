"""A ``python -m worker`` subprocess for end-to-end tests, and its environment."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import orjson

#: A slow identity backend, the ``pipe.py`` of the process tests.
BACKEND = """
import time

from packflow import InferenceBackend


class Backend(InferenceBackend):
    def execute(self, inputs):
        time.sleep(0.02)
        return [dict(record, seen=True) for record in inputs]
"""


def worker_env(
    bootstrap: str,
    names: dict[str, str],
    backend: str,
    group_id: str | None = None,
    **settings: str,
) -> dict[str, str]:
    """The environment of a worker on ``names``' topics with health port 0.

    ``group_id`` defaults to a new group; each of ``settings`` becomes ``PACKFLOW_<NAME>``.
    """
    env = {
        **os.environ,
        "PACKFLOW_BOOTSTRAP_SERVERS": bootstrap,
        "PACKFLOW_INPUT_TOPIC": names["input_topic"],
        "PACKFLOW_OUTPUT_TOPIC": names["output_topic"],
        "PACKFLOW_DLQ_TOPIC": names["dlq_topic"],
        "PACKFLOW_GROUP_ID": group_id or f"g-{uuid.uuid4().hex[:10]}",
        "PACKFLOW_BACKEND": backend,
        "PACKFLOW_HEALTH_PORT": "0",
    }
    env.update({f"PACKFLOW_{name.upper()}": value for name, value in settings.items()})
    return env


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

"""Helpers shared by the tests of scripts/kafka and scripts/kafka_local."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka"
CLI_TIMEOUT = 170.0


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/kafka`` with this interpreter (so PATH may lack python)."""
    return subprocess.run(
        [sys.executable, str(KAFKA_SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ``kafka: error: ...`` lines a failed command printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("kafka: error: ")]


def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state != "Z"


def env_without_java(tmp_path: Path) -> dict[str, str]:
    """The current environment with a PATH that has no ``java`` and no JAVA_HOME."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(empty)
    return env


def env_with_only_java(tmp_path: Path) -> dict[str, str]:
    """The current environment whose PATH has ``java`` but no ``mvn``."""
    import shutil

    java = shutil.which("java")
    assert java is not None, "these tests need java on PATH"
    only_java = tmp_path / "java-bin"
    only_java.mkdir(exist_ok=True)
    link = only_java / "java"
    if not link.exists():
        link.symlink_to(Path(java).resolve())
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(only_java)
    return env

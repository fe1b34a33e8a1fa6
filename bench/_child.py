"""A contender's subprocess: started with its output in a log file, stopped with SIGTERM.

Every process a phase measures (the worker, the reference pipes, Kafka's perf tools) runs
as one of these, so start, liveness, stop and the log tail of a failure are written once.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path


class Child:
    """One subprocess: ``argv`` run in ``cwd`` with ``env``, stdout and stderr to ``log_path``."""

    def __init__(
        self, argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None, log_path: Path
    ) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """Tell whether the process is still running."""
        return self.proc.poll() is None

    def ok(self) -> bool:
        """Tell whether the process is running or has exited with code 0."""
        return self.proc.poll() in (None, 0)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself and return its exit code."""
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM the process (SIGKILL after ``timeout``) and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

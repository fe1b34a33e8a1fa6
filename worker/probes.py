"""What ``/healthz`` and ``/readyz`` answer, from what the worker knows now.

Kafka-free: the worker gathers its figures into :class:`Health` and :class:`Readiness` and
these decide. ``/healthz`` failing restarts the container, so it fails only when the worker
cannot recover by itself; ``/readyz`` failing takes it out of service until it can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.lifecycle import State

__all__ = ["Health", "Readiness"]


@dataclass(frozen=True, slots=True)
class Health:
    """The liveness figures: a fatal error, ended tasks, a backend call past its grace."""

    worker_id: str
    failure: BaseException | None = None
    dead_tasks: list[str] = field(default_factory=list)
    stopping: bool = False
    stuck_seconds: float = 0.0
    grace_seconds: float = float("inf")

    def answer(self) -> tuple[bool, dict[str, Any]]:
        """``(alive, body)``: an ended task counts only while the worker is not stopping."""
        if self.failure is not None or (self.dead_tasks and not self.stopping):
            error = f"{type(self.failure).__name__}: {self.failure}"
            if self.failure is None:
                error = "background tasks ended: " + ", ".join(self.dead_tasks)
            return False, {"error": error}
        if self.stuck_seconds > self.grace_seconds:
            return False, {
                "error": f"a backend call has been running for {self.stuck_seconds:.0f}s, past "
                f"--backend-timeout-seconds and --backend-timeout-grace-seconds: restart me"
            }
        return True, {"worker_id": self.worker_id}


@dataclass(frozen=True, slots=True)
class Readiness:
    """The readiness figures; every reason not to take traffic is listed."""

    state: State
    stopping: bool
    partitions: int
    in_flight_records: int
    liveness_reasons: list[str] = field(default_factory=list)
    breaker_reason: str | None = None
    backend_ready: bool = True

    def reasons(self) -> list[str]:
        """Why the worker is not ready; empty when it is."""
        reasons: list[str] = []
        if self.state is State.STARTING:
            reasons.append("starting")
        if self.stopping:
            reasons.append("stopping")
        if not self.partitions:
            reasons.append("no partitions assigned")
        reasons += self.liveness_reasons
        if self.breaker_reason is not None:
            reasons.append(self.breaker_reason)
        if not self.backend_ready:
            reasons.append("backend not ready")
        return reasons

    def answer(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, body)``."""
        reasons = self.reasons()
        return not reasons, {
            "reasons": reasons,
            "partitions": self.partitions,
            "in_flight_records": self.in_flight_records,
        }

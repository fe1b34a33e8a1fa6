"""Telling an outage from a poison record: which backend failures are transient, and retries.

A failure is transient when the backend raised :class:`packflow.exceptions.RetryableError`, an
exception named in ``--retry-on`` (``TimeoutError``, ``ConnectionError``; subclasses count), or
a call ran past ``--backend-timeout-seconds``; the exception itself or any exception it was
raised from (the SDK wraps a step's error) decides. A transient failure is retried with
exponential backoff and jitter before anything else; if it persists, the batch is not bisected
into dead letters but held by the breaker (:mod:`worker.breaker`).
"""

from __future__ import annotations

from dataclasses import dataclass

from packflow.exceptions import RetryableError

__all__ = ["BackendTimeout", "BackendUnavailable", "RetryPolicy"]


class BackendTimeout(Exception):
    """A backend call ran past ``--backend-timeout-seconds`` (its thread still runs), or no
    executor slot is free because earlier calls did."""


class BackendUnavailable(Exception):
    """A batch cannot be processed now: its calls keep failing transiently after their retries,
    or most of its messages failed the same way. ``attempts`` is how many calls were made."""

    def __init__(self, reason: str, *, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how fast a transient backend failure is retried.

    ``max_attempts`` counts the first call; ``transient`` holds exception class names.
    """

    max_attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    transient: frozenset[str] = frozenset()

    def is_transient(self, exc: BaseException) -> bool:
        """True when ``exc`` or an exception it was raised from is a transient failure."""
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, RetryableError | BackendTimeout):
                return True
            if self.transient and any(c.__name__ in self.transient for c in type(current).__mro__):
                return True
            current = current.__cause__ or current.__context__
        return False

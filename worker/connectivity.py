"""Whether the worker can reach Kafka, judged from the outcome of its own requests.

Every request that gets an answer (a fetch with records, an acknowledgement, a commit, a lag
check, a probe) calls :meth:`BrokerWatch.reached`; a request that fails or times out calls
:meth:`BrokerWatch.failed`. The watch logs one ``kafka_unreachable`` warning when the broker
stops answering and one ``kafka_reachable`` warning, with the outage's duration, when it is
back; ``/readyz`` asks :meth:`BrokerWatch.unreachable_for`.

A failure is evidence only of the time since the request was sent: a request sent during an
outage that times out after the broker has answered another one (a lag check waiting for a
partition leader while a metadata probe already got through) does not start a new outage.
:meth:`BrokerWatch.ask` sends a request and records its outcome that way.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from worker._kafka import ask, describe
from worker._log_limit import take_suppressed
from worker.errors import KafkaUnanswered

__all__ = ["BrokerWatch"]

_T = TypeVar("_T")


class BrokerWatch:
    """Tracks the broker's reachability and logs each change once."""

    def __init__(self, logger: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._clock = clock
        self._unreachable_since: float | None = None
        self.last_contact = clock()

    def reached(self) -> None:
        """A request was answered: the broker is reachable."""
        now = self._clock()
        self.last_contact = now
        since = self._unreachable_since
        if since is not None:
            self._unreachable_since = None
            self._log.warning(
                "kafka_reachable",
                unreachable_s=round(now - since, 1),
                suppressed_library_lines=take_suppressed(),
            )

    def failed(self, error: BaseException, *, sent_at: float | None = None) -> None:
        """A request failed or timed out: unreachable since the last answer (if not already).

        ``sent_at`` (this watch's clock) is when the request was sent; a failure of a request
        sent before the last answer says nothing of the broker now and is ignored.
        """
        if sent_at is not None and sent_at < self.last_contact:
            return
        if self._unreachable_since is None:
            self._unreachable_since = self.last_contact
            self._log.warning(
                "kafka_unreachable",
                error=describe(error),
                last_contact_s_ago=round(self._clock() - self.last_contact, 1),
            )

    async def ask(self, request: Awaitable[_T], seconds: float, what: str) -> _T:
        """Await ``request`` like :func:`~worker._kafka.ask` and record whether it was answered.

        Raises :class:`~worker.errors.KafkaUnanswered` (after :meth:`failed`) when it was not.
        """
        sent_at = self._clock()
        try:
            answer = await ask(request, seconds, what)
        except KafkaUnanswered as exc:
            self.failed(exc, sent_at=sent_at)
            raise
        self.reached()
        return answer

    def quiet_for(self) -> float:
        """Seconds since the last answered request."""
        return self._clock() - self.last_contact

    def unreachable_for(self) -> float | None:
        """Seconds since the broker stopped answering, or None while it answers."""
        if self._unreachable_since is None:
            return None
        return self._clock() - self._unreachable_since

"""The path of one batch, top to bottom: fetch, stages, delivery, settled.

:meth:`BatchFlow.run` is the fetch loop. Each fetched batch takes its share of the in-flight
budget, runs through the stages of :mod:`worker.pipeline` (held by the breaker while the
backend is unavailable) and goes to the delivery strategy, which publishes and commits it
(:mod:`worker.at_least_once` or :mod:`worker.exactly_once`) and calls :meth:`BatchFlow.settled`
once the broker has acknowledged it: its metrics are emitted and the budget released there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from worker.backpressure import InFlightBudget
from worker.breaker import Breaker
from worker.delivery import DeliveryStrategy, Settled
from worker.fetcher import Fetched, Fetcher
from worker.limits import TopicLimits
from worker.liveness import Liveness
from worker.pipeline import Batch, new_batch, run_stages
from worker.prometheus import WorkerMetrics
from worker.reporting import BatchReporter
from worker.runner import BatchRunner

if TYPE_CHECKING:
    from worker.tracing import BatchTracer

__all__ = ["BatchFlow"]


class BatchFlow:
    """Fetches batches and carries each one to its delivery; counts what settled.

    ``stopping()`` says whether to give a held batch up (a stop or a rebalance is waiting
    for the budget to drain). ``batches`` counts settled batches and ``lag`` holds the last
    consumer lag seen per ``(topic, partition)``.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        runner: BatchRunner,
        delivery: DeliveryStrategy,
        *,
        budget: InFlightBudget,
        breaker: Breaker,
        liveness: Liveness,
        reporter: BatchReporter,
        metrics: WorkerMetrics,
        limits: TopicLimits,
        output_topic: str,
        backend: str,
        stopping: Callable[[], bool],
        tracer: BatchTracer | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._runner = runner
        self._delivery = delivery
        self._budget = budget
        self._breaker = breaker
        self._liveness = liveness
        self._reporter = reporter
        self._metrics = metrics
        self._limits = limits
        self._output_topic = output_topic
        self._backend = backend
        self._stopping = stopping
        self._tracer = tracer
        self.batches = 0
        self.lag: dict[tuple[str, int], int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and process batches until ``stop`` is set (a cancelled fetch ends it too)."""
        while not stop.is_set():
            try:
                fetched = await self._fetcher.fetch(stop)
            except asyncio.CancelledError:
                if stop.is_set():
                    return
                raise
            if fetched is not None:
                await self._process(*fetched, stop)

    async def _process(self, data: Fetched, generation: int, stop: asyncio.Event) -> None:
        """Run one fetched batch through the pipeline's stages and hand it to the delivery."""
        batch = new_batch(data, generation)
        self._budget.take(len(batch.messages), batch.nbytes)
        published = False
        try:
            with self._tracer.batch(batch) if self._tracer else contextlib.nullcontext():
                held = await self._run_or_hold(batch, data, stop)
                if held is None:
                    return  # given up (stopping, or its partitions handed over): not committed
                fetcher = self._fetcher
                published = True
                await self._publish(held, lambda: fetcher.owned(generation))
        finally:
            if not published:
                self._budget.release(len(batch.messages), batch.nbytes)

    async def _run_or_hold(self, batch: Batch, data: Fetched, stop: asyncio.Event) -> Batch | None:
        """The batch once its stages ran, held by the breaker while the backend is unavailable;
        None when it was given up (stopping, a rebalance, its assignment ended)."""
        fetcher = self._fetcher
        trace_step = self._tracer.step if self._tracer else None

        async def run(attempt: Batch) -> None:
            await run_stages(
                attempt,
                self._runner,
                backend=self._backend,
                limits=self._limits,
                output_topic=self._output_topic,
                trace_step=trace_step,
            )

        def given_up(attempt: Batch) -> bool:
            # A rebalance waits for the budget to drain: let the batch go so it can.
            return self._stopping() or not fetcher.owned(attempt.generation)

        return await self._breaker.run(
            batch,
            run,
            lambda: new_batch(data, batch.generation),  # the same messages, afresh
            hold=lambda seconds: fetcher.hold(seconds, stop),
            given_up=given_up,
        )

    async def _publish(self, batch: Batch, owned: Callable[[], bool]) -> None:
        if self._tracer is None:
            await self._delivery.publish(batch, owned)
            return
        trace = self._tracer.headers()  # the batch span's context, not the publish step's
        for message in batch.messages:
            message.carry_trace(trace)
        with self._tracer.step("publish"):
            await self._delivery.publish(batch, owned)

    async def settled(self, batch: Batch, settled: Settled) -> None:
        """The broker acknowledged ``batch``: report it, release the budget."""
        self._reporter.fill(batch.stats, settled)
        self._budget.release(len(batch.messages), batch.nbytes)
        self._liveness.progressed()
        self.batches += 1
        for name, lag in batch.stats.consumer_lag.items():
            topic, _, partition = name.rpartition("/")
            self.lag[(topic, int(partition))] = lag
        self._metrics.observe_batch(batch.stats, settled.letter_kinds)
        await self._reporter.emit(batch.stats)

"""How the settings become the worker's parts, and how those parts are wired together.

:class:`~worker.app.Worker` starts and stops what is built here; nothing here starts a
client or a task.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from worker.backpressure import InFlightBudget
from worker.breaker import Breaker
from worker.clients import KafkaClients
from worker.delivery import DeliveryStrategy
from worker.fetcher import Fetcher
from worker.flow import BatchFlow
from worker.guarantees import make_delivery
from worker.handover import Handover, HandoverListener
from worker.limits import TopicLimits
from worker.liveness import Liveness
from worker.prometheus import WorkerMetrics
from worker.publisher import Publisher
from worker.reporting import BatchReporter
from worker.retry import RetryPolicy
from worker.runner import BatchRunner, SupportsRun
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from worker.tracing import BatchTracer

__all__ = [
    "Pipeline",
    "Shared",
    "build_pipeline",
    "make_breaker",
    "make_publisher",
    "make_runner",
]


def make_runner(
    backend: SupportsRun, executor: Executor, settings: WorkerSettings, tracer: BatchTracer | None
) -> BatchRunner:
    """The backend runner with the retry, timeout and breaker settings."""
    s = settings
    return BatchRunner(
        backend,
        executor,
        parallel=s.executor_threads,
        policy=RetryPolicy(
            max_attempts=s.retry_max_attempts,
            initial_backoff=s.retry_initial_backoff_ms / 1000,
            max_backoff=s.retry_max_backoff_ms / 1000,
            transient=frozenset(s.retry_on),
        ),
        timeout=s.backend_timeout_seconds,
        breaker_ratio=s.breaker_failure_ratio,
        breaker_min_messages=s.breaker_min_messages,
        tracer=tracer,
    )


def make_breaker(settings: WorkerSettings, logger: Any) -> Breaker:
    """The breaker, backing off from the first retry delay up to ``--breaker-max-backoff-ms``."""
    maximum = settings.breaker_max_backoff_ms / 1000
    initial = min(settings.retry_initial_backoff_ms / 1000, maximum)
    return Breaker(logger, initial=initial, maximum=maximum)


def make_publisher(
    producer: AIOKafkaProducer,
    settings: WorkerSettings,
    *,
    output_partitions: int,
    backend: str,
    limits: TopicLimits,
    logger: Any,
    on_fatal: Callable[[BaseException], None],
) -> Publisher:
    """The publisher of outputs, dead letters and metric events on ``producer``."""
    return Publisher(
        producer,
        output_topic=settings.output_topic,
        output_partitions=output_partitions,
        dlq_topic=settings.dlq_topic,
        metrics_topic=settings.metrics_topic,
        worker_id=settings.worker_id,
        backend=backend,
        logger=logger,
        limits=limits,
        on_fatal=on_fatal,
    )


@dataclass(frozen=True, slots=True)
class Shared:
    """What the worker owns from its construction and lends to the pipeline's parts."""

    settings: WorkerSettings
    backend: str
    budget: InFlightBudget
    liveness: Liveness
    breaker: Breaker
    metrics: WorkerMetrics
    recent_metrics: collections.deque[dict[str, Any]]
    failed: asyncio.Event
    logger: Any


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The consumer and the parts that work with it."""

    consumer: AIOKafkaConsumer
    publisher: Publisher
    fetcher: Fetcher
    delivery: DeliveryStrategy
    flow: BatchFlow
    handover: Handover


def build_pipeline(
    shared: Shared,
    clients: KafkaClients,
    publisher: Publisher,
    runner: BatchRunner,
    *,
    output_partitions: int,
    limits: TopicLimits,
    tracer: BatchTracer | None,
    rebalancing: Callable[[], bool],
    stopping: Callable[[], bool],
    on_rebalance: tuple[Callable[[], None], Callable[[], None]],
    on_fatal: Callable[[BaseException], None],
) -> Pipeline:
    """Wire the consumer, fetcher, delivery strategy, batch flow and rebalance hand-over.

    ``on_rebalance`` is called when a rebalance begins and when it ends.
    """
    s, log = shared.settings, shared.logger
    listener = HandoverListener(
        lambda p: handover.revoked(p), lambda p: handover.assigned_(p), on_fatal
    )
    consumer = clients.consumer(listener)
    fetcher = Fetcher(
        consumer, s, shared.budget, shared.liveness, rebalancing=rebalancing, logger=log
    )
    delivery = make_delivery(
        clients,
        consumer,
        publisher,
        lambda batch, settled: flow.settled(batch, settled),
        output_partitions=output_partitions,
        backend=shared.backend,
        limits=limits,
        on_committed=shared.liveness.progressed,
        on_fatal=on_fatal,
        logger=log,
    )
    reporter = BatchReporter(
        consumer,
        publisher,
        shared.budget,
        backend=shared.backend,
        worker_id=s.worker_id,
        recent=shared.recent_metrics,
        logger=log,
    )
    flow = _flow(shared, fetcher, runner, delivery, reporter, limits, tracer, stopping)
    began, ended = on_rebalance
    handover = Handover(
        fetcher,
        delivery,
        shared.budget,
        shared.failed,
        drain_seconds=s.rebalance_timeout_ms / 1250,  # 80% of the rebalance timeout
        on_begin=began,
        on_end=ended,
        logger=log,
    )
    return Pipeline(consumer, publisher, fetcher, delivery, flow, handover)


def _flow(
    shared: Shared,
    fetcher: Fetcher,
    runner: BatchRunner,
    delivery: DeliveryStrategy,
    reporter: BatchReporter,
    limits: TopicLimits,
    tracer: BatchTracer | None,
    stopping: Callable[[], bool],
) -> BatchFlow:
    return BatchFlow(
        fetcher,
        runner,
        delivery,
        budget=shared.budget,
        breaker=shared.breaker,
        liveness=shared.liveness,
        reporter=reporter,
        metrics=shared.metrics,
        limits=limits,
        output_topic=shared.settings.output_topic,
        backend=shared.backend,
        stopping=stopping,
        tracer=tracer,
    )

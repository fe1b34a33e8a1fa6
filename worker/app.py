"""The worker: its lifecycle, its state, and what its probes and metrics read of it.

The path of one batch lives in :mod:`worker.flow` (see ARCHITECTURE.md); this module starts
each part in order, registers its closer on an ``AsyncExitStack`` and unwinds them under one
shutdown :class:`~worker.lifecycle.Deadline`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from aiokafka import TopicPartition

from worker._kafka import (
    check_connection,
    check_topics,
    start_with_retry,
    stop_bounded,
    topic_limits,
)
from worker.assembly import (
    Pipeline,
    Shared,
    build_pipeline,
    make_breaker,
    make_publisher,
    make_runner,
)
from worker.backpressure import InFlightBudget
from worker.clients import KafkaClients
from worker.delivery import DeliveryStrategy
from worker.errors import AuthorizationError, PublishError, StartupError
from worker.health import HealthServer
from worker.lifecycle import Deadline, State, finish_task, started_fields
from worker.limits import UNLIMITED
from worker.liveness import Liveness
from worker.probes import Health, Readiness
from worker.prometheus import CONTENT_TYPE, WorkerMetrics, WorkerState
from worker.publisher import Publisher
from worker.runner import BatchRunner, SupportsRun, ask_ready
from worker.settings import WorkerSettings
from worker.tracing_setup import tracer_from_env

__all__ = ["EXIT_FAILURE", "EXIT_OK", "Worker"]

EXIT_OK = 0
EXIT_FAILURE = 1
_READY_PROBE_TIMEOUT = 2.0


class Worker:
    """One worker process's Kafka pipeline around a loaded backend.

    ``await worker.run()`` starts everything, runs until :meth:`request_stop` (or a fatal
    error) and shuts down; it returns the exit code. ``started`` is set once the worker is
    consuming and ``health_port`` is known. For observation (tests, embedding): ``batches``,
    ``pauses``, ``assignments``, ``budget`` (in-flight peaks), ``delivery`` and
    ``recent_metrics`` (the last 256 ``batch_metrics`` events).
    """

    def __init__(
        self, settings: WorkerSettings, backend: SupportsRun, *, tracer_provider: Any = None
    ) -> None:
        self.settings = settings
        self._tracer_provider = tracer_provider
        self._backend = backend
        self.backend_name = type(backend).__name__
        self._log = log = structlog.get_logger("packflow.worker").bind(worker_id=settings.worker_id)
        self._shared = Shared(
            settings=settings,
            backend=self.backend_name,
            budget=InFlightBudget(settings.max_in_flight_records, settings.max_in_flight_bytes),
            liveness=Liveness(
                settings.readiness_stall_seconds,
                log,
                fetch_wait=settings.max_batch_wait_ms / 1000.0,
            ),
            breaker=make_breaker(settings, log),
            metrics=WorkerMetrics(self._metrics_state),
            recent_metrics=collections.deque(maxlen=256),
            failed=asyncio.Event(),
            logger=log,
        )
        self._budget, self._liveness = self._shared.budget, self._shared.liveness
        self._breaker, self.metrics = self._shared.breaker, self._shared.metrics
        self._ready_at_scrape = False
        self._state = State.STARTING
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._failure: BaseException | None = None
        self._limits = UNLIMITED
        self._clients: KafkaClients | None = None
        self._runner: BatchRunner | None = None
        self._probe_executor: ThreadPoolExecutor | None = None
        self._fetch_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._pipeline: Pipeline | None = None
        self._clean = True
        self._deadline = Deadline(settings.shutdown_timeout_seconds, self._force)
        self.started = asyncio.Event()
        self.health_port: int | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def budget(self) -> InFlightBudget:
        """The in-flight budget (peaks are useful to observe backpressure)."""
        return self._budget

    @property
    def delivery(self) -> DeliveryStrategy | None:
        """The delivery strategy, once started."""
        return None if self._pipeline is None else self._pipeline.delivery

    @property
    def recent_metrics(self) -> collections.deque[dict[str, Any]]:
        """The last 256 ``batch_metrics`` events."""
        return self._shared.recent_metrics

    @property
    def batches(self) -> int:
        """How many batches settled."""
        return 0 if self._pipeline is None else self._pipeline.flow.batches

    @property
    def assigned(self) -> set[TopicPartition]:
        """The partitions assigned now."""
        return set() if self._pipeline is None else set(self._pipeline.handover.assigned)

    @property
    def assignments(self) -> int:
        """How many assignments completed."""
        return 0 if self._pipeline is None else self._pipeline.handover.assignments

    @property
    def pauses(self) -> int:
        """How often the partitions were paused for backpressure."""
        return 0 if self._pipeline is None else self._pipeline.fetcher.pauses

    @property
    def failure(self) -> BaseException | None:
        """The fatal error that stopped the worker, if any."""
        return self._failure

    def request_stop(self) -> None:
        """Ask the worker to stop fetching, drain, commit and shut down."""
        if not self._stop.is_set():
            self._log.info("worker_stopping", in_flight_records=self._budget.records)
        self._state = State.STOPPING
        self._stop.set()
        fetching = self._pipeline is not None and self._pipeline.fetcher.in_getmany
        if fetching and self._fetch_task is not None:
            self._fetch_task.cancel()

    def force_stop(self) -> None:
        """Stop now: cancel the work in flight without committing it (exit code 1)."""
        self._force.set()
        self.request_stop()

    async def run(self) -> int:
        """Start, run until stopped, shut down; returns the process exit code.

        Raises :class:`StartupError` when start-up fails, including a missing ACL found
        before the first batch settled.
        """
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    await self._startup(stack)
                    await self._stop.wait()
                finally:
                    self._state = State.STOPPING
                    self._stop.set()
                    self._deadline = Deadline(self.settings.shutdown_timeout_seconds, self._force)
        finally:
            self._state = State.STOPPED
            self._log.info(
                "worker_stopped",
                clean=self._clean,
                batches=self.batches,
                commits=None if self._pipeline is None else self._pipeline.delivery.commits,
                error=None if self._failure is None else str(self._failure),
            )
        if isinstance(self._failure, AuthorizationError) and self.batches == 0:
            # Refused before any batch settled: a missing ACL, reported as a start-up failure.
            raise StartupError(str(self._failure))
        if self._failure is not None or not self._clean:
            return EXIT_FAILURE
        return EXIT_OK

    # -- startup: each resource registers its closer; shutdown unwinds them in reverse -------

    def _closing(self, stack: contextlib.AsyncExitStack, close: Any) -> None:
        """Register ``close(deadline) -> bool``; a False (late) makes the exit unclean."""

        async def step() -> None:
            self._clean &= bool(await close(self._deadline))

        stack.push_async_callback(step)

    async def _startup(self, stack: contextlib.AsyncExitStack) -> None:
        s = self.settings
        executor = ThreadPoolExecutor(s.executor_threads, thread_name_prefix="pf-backend")
        self._probe_executor = ThreadPoolExecutor(1, thread_name_prefix="pf-probe")
        for pool in (executor, self._probe_executor):
            stack.callback(pool.shutdown, wait=False, cancel_futures=True)
        tracer, provider = tracer_from_env(
            topic=s.input_topic,
            group=s.group_id,
            backend=self.backend_name,
            provider=self._tracer_provider,
        )
        if provider is not None:
            stack.callback(provider.shutdown)  # last: flushes the spans of the last batches
        self._runner = make_runner(self._backend, executor, s, tracer)
        await self._start_health(stack)

        publisher, output_partitions = await self._start_producer(stack)
        assert self._clients is not None
        self._pipeline = pipeline = build_pipeline(
            self._shared,
            self._clients,
            publisher,
            self._runner,
            output_partitions=output_partitions,
            limits=self._limits,
            tracer=tracer,
            rebalancing=self._rebalancing,
            stopping=lambda: self._stop.is_set() or self._rebalancing(),
            on_rebalance=(self._rebalance_began, self._rebalance_ended),
            on_fatal=self._fail,
        )
        consumer, delivery = pipeline.consumer, pipeline.delivery
        self._closing(stack, delivery.close)  # after the consumer stopped
        await start_with_retry(
            consumer, s.bootstrap_servers, s.startup_timeout_seconds, group=s.group_id
        )
        self._closing(stack, lambda d: stop_bounded(consumer, d.remaining()))
        self._closing(stack, delivery.drain)  # before the consumer stops
        await delivery.start()
        self._start_tasks(pipeline)
        self._closing(stack, self._stop_tasks)
        if self._state is State.STARTING:  # a first rebalance may already be under way
            self._state = State.RUNNING
        fields = started_fields(s, backend=self.backend_name, health_port=self.health_port)
        self._log.info("worker_started", **fields, **self._limits.described())
        self.started.set()

    async def _start_producer(self, stack: contextlib.AsyncExitStack) -> tuple[Publisher, int]:
        """Read the topics' limits, start the producer and announce the worker on the metrics
        topic; returns the publisher and the output partition count."""
        s = self.settings
        timeout = s.startup_timeout_seconds
        self._clients = clients = KafkaClients(s, on_token_refresh=self._token_refreshed)
        await check_connection(s, clients.connection, timeout)
        self._limits = limits = await topic_limits(clients, timeout)
        producer = clients.producer(max_batch_bytes=limits.batch_bytes)
        await start_with_retry(producer, s.bootstrap_servers, timeout)
        self._closing(stack, lambda d: stop_bounded(producer, d.remaining()))
        output_partitions = await check_topics(producer, s)
        publisher = make_publisher(
            producer,
            s,
            output_partitions=output_partitions,
            backend=self.backend_name,
            limits=limits,
            logger=self._log,
            on_fatal=self._fail,
        )
        fields = started_fields(s, backend=self.backend_name, health_port=self.health_port)
        try:
            await publisher.announce(
                {"event": "worker_starting", "worker_id": s.worker_id, **fields}, timeout
            )
        except (AuthorizationError, PublishError) as exc:
            raise StartupError(str(exc)) from exc
        return publisher, output_partitions

    async def _start_health(self, stack: contextlib.AsyncExitStack) -> None:
        port = self.settings.health_port
        health = HealthServer(
            healthz=self._healthz, readyz=self._readyz, metrics=self._render_metrics, port=port
        )
        try:
            await health.start()
        except OSError as exc:
            raise StartupError(f"health port {port} cannot be bound: {exc}") from exc
        stack.push_async_callback(health.stop)
        self.health_port = health.port
        self._log.info("health_listening", health_port=self.health_port)

    def _start_tasks(self, pipeline: Pipeline) -> None:
        """The fetch loop (the flow) and the liveness watch, as named tasks."""
        fetching = self._guard(pipeline.flow.run(self._stop))
        self._fetch_task = asyncio.create_task(fetching, name="pf-fetch")
        watch = self._liveness.watch_loop(pipeline.consumer, self._stop)
        self._watch_task = asyncio.create_task(self._guard(watch), name="pf-watch")
        self._liveness.restart()

    async def _stop_tasks(self, deadline: Deadline) -> bool:
        """Stop fetching (the batch in flight finishes) and probing."""
        self.request_stop()
        clean = await finish_task(self._fetch_task, deadline, self._log)
        return clean & await finish_task(self._watch_task, deadline, self._log)

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Record a fatal error and start the shutdown (exit code 1)."""
        if self._failure is None:
            self._failure = exc
        self._shared.failed.set()
        trace = None if isinstance(exc, AuthorizationError) else exc  # the message says it all
        self._log.error("worker_failed", error=f"{type(exc).__name__}: {exc}", exc_info=trace)
        self.request_stop()

    # -- rebalance (the listener's entry points) ---------------------------------------------

    def _rebalancing(self) -> bool:
        return self._state is State.REBALANCING

    def _rebalance_began(self) -> None:
        if self._state is not State.STOPPING:
            self._state = State.REBALANCING

    def _rebalance_ended(self) -> None:
        if self._state is State.REBALANCING:
            self._state = State.RUNNING
        self._liveness.restart()

    def _token_refreshed(self, lifetime: float) -> None:
        self._log.info("oauth_token_refreshed", expires_in_seconds=round(lifetime, 1))

    # -- health and metrics ------------------------------------------------------------------

    async def _render_metrics(self) -> tuple[str, bytes]:
        self._ready_at_scrape, _ = await self._readyz()
        return CONTENT_TYPE, self.metrics.render()

    def _metrics_state(self) -> WorkerState:
        assigned = self.assigned
        lag: dict[tuple[str, int], int] = {}
        pipeline = self._pipeline
        if pipeline is not None:
            lag = pipeline.flow.lag = {
                k: v for k, v in pipeline.flow.lag.items() if TopicPartition(*k) in assigned
            }
        return WorkerState(
            ready=self._ready_at_scrape,
            in_flight_records=self._budget.records,
            in_flight_bytes=self._budget.bytes,
            assigned_partitions=len(assigned),
            paused_partitions=0 if pipeline is None else pipeline.fetcher.paused_count,
            commits=0 if pipeline is None else pipeline.delivery.commits,
            rebalances=self.assignments,
            breaker_open=self._breaker.is_open,
            breaker_open_seconds=self._breaker.open_seconds,
            breaker_trips=self._breaker.trips,
            consumer_lag=dict(lag),
        )

    async def _healthz(self) -> tuple[bool, dict[str, Any]]:
        tasks = [t for t in (self._fetch_task, self._watch_task) if t is not None]
        dead = [t.get_name() for t in tasks if t.done()]
        if self._pipeline is not None:
            dead += self._pipeline.delivery.dead_tasks()
        return Health(
            worker_id=self.settings.worker_id,
            failure=self._failure,
            dead_tasks=dead,
            stopping=self._stop.is_set(),
            stuck_seconds=0.0 if self._runner is None else self._runner.stuck_seconds(),
            grace_seconds=self.settings.backend_timeout_grace_seconds,
        ).answer()

    async def _readyz(self) -> tuple[bool, dict[str, Any]]:
        backend_ready = self._probe_executor is None or await ask_ready(
            self._backend, self._probe_executor, _READY_PROBE_TIMEOUT
        )
        return Readiness(
            state=self._state,
            stopping=self._stop.is_set(),
            partitions=len(self.assigned),
            in_flight_records=self._budget.records,
            liveness_reasons=self._liveness.reasons(),
            breaker_reason=self._breaker.reason,
            backend_ready=backend_ready,
        ).answer()

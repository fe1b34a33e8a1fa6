"""The worker: lifecycle, the fetch loop and the rebalance hand-over (see ARCHITECTURE.md).

One batch's path: :meth:`Worker._fetch_loop` takes it with ``getmany`` (bounded by the
in-flight budget), :meth:`Worker._process` runs it through the stages of
:mod:`worker.pipeline` and hands it to the delivery strategy (:mod:`worker.at_least_once` or
:mod:`worker.exactly_once`), which reports it back to :meth:`Worker._settled` once the broker
has acknowledged it: metrics are emitted and the budget released there.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from worker._kafka import (
    UNLIMITED,
    check_topics,
    start_with_retry,
    stop_bounded,
    topic_limits,
)
from worker.backpressure import InFlightBudget
from worker.breaker import Breaker
from worker.clients import KafkaClients
from worker.delivery import DeliveryStrategy, Settled
from worker.errors import AuthorizationError, PublishError, StartupError
from worker.fetcher import Fetched, Fetcher
from worker.guarantees import make_delivery
from worker.handover import Handover, HandoverListener
from worker.health import HealthServer
from worker.lifecycle import Deadline, State, finish_task, started_fields
from worker.liveness import Liveness
from worker.pipeline import Batch, new_batch, run_stages
from worker.preflight import check_connection
from worker.prometheus import CONTENT_TYPE, WorkerMetrics, WorkerState
from worker.publisher import Publisher
from worker.reporting import BatchReporter
from worker.retry import RetryPolicy
from worker.runner import BatchRunner, SupportsRun, ask_ready
from worker.settings import WorkerSettings
from worker.tracing_setup import tracer_from_env

if TYPE_CHECKING:
    from worker.tracing import BatchTracer

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
        self._tracer: BatchTracer | None = None
        self._backend = backend
        self.backend_name = type(backend).__name__
        self._log = structlog.get_logger("packflow.worker").bind(worker_id=settings.worker_id)
        self._budget = InFlightBudget(settings.max_in_flight_records, settings.max_in_flight_bytes)
        self._liveness = Liveness(settings.readiness_stall_seconds, self._log)
        self._breaker = Breaker(
            self._log,
            initial=min(settings.retry_initial_backoff_ms, settings.breaker_max_backoff_ms) / 1000,
            maximum=settings.breaker_max_backoff_ms / 1000,
        )
        self.metrics = WorkerMetrics(self._metrics_state)
        self._ready_at_scrape = False
        self._lag: dict[tuple[str, int], int] = {}
        self._state = State.STARTING
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._failed = asyncio.Event()
        self._failure: BaseException | None = None
        self._limits = UNLIMITED
        self._clients: KafkaClients | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._publisher: Publisher | None = None
        self._reporter: BatchReporter | None = None
        self._delivery: DeliveryStrategy | None = None
        self._runner: BatchRunner | None = None
        self._probe_executor: ThreadPoolExecutor | None = None
        self._fetch_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._fetcher: Fetcher | None = None
        self._handover: Handover | None = None
        self._clean = True
        self._recent_metrics: collections.deque[dict[str, Any]] = collections.deque(maxlen=256)
        self._deadline = Deadline(settings.shutdown_timeout_seconds, self._force)
        self.started = asyncio.Event()
        self.health_port: int | None = None
        self.batches = 0

    # -- public API ---------------------------------------------------------------------------

    @property
    def budget(self) -> InFlightBudget:
        """The in-flight budget (peaks are useful to observe backpressure)."""
        return self._budget

    @property
    def delivery(self) -> DeliveryStrategy | None:
        """The delivery strategy, once started."""
        return self._delivery

    @property
    def recent_metrics(self) -> collections.deque[dict[str, Any]]:
        """The last 256 ``batch_metrics`` events."""
        return self._recent_metrics

    @property
    def assigned(self) -> set[TopicPartition]:
        """The partitions assigned now."""
        return set() if self._handover is None else set(self._handover.assigned)

    @property
    def assignments(self) -> int:
        """How many assignments completed."""
        return 0 if self._handover is None else self._handover.assignments

    @property
    def pauses(self) -> int:
        """How often the partitions were paused for backpressure."""
        return 0 if self._fetcher is None else self._fetcher.pauses

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
        fetching = self._fetcher is not None and self._fetcher.in_getmany
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
                commits=None if self._delivery is None else self._delivery.commits,
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
        self._tracer, provider = tracer_from_env(
            topic=s.input_topic,
            group=s.group_id,
            backend=self.backend_name,
            provider=self._tracer_provider,
        )
        if provider is not None:
            stack.callback(provider.shutdown)  # last: flushes the spans of the last batches
        self._runner = BatchRunner(
            self._backend,
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
            tracer=self._tracer,
        )
        await self._start_health(stack)

        output_partitions = await self._start_producer(stack)
        consumer, delivery = self._build_pipeline(output_partitions)
        self._closing(stack, delivery.close)  # after the consumer stopped
        await start_with_retry(
            consumer, s.bootstrap_servers, s.startup_timeout_seconds, group=s.group_id
        )
        self._closing(stack, lambda d: stop_bounded(consumer, d.remaining()))
        self._closing(stack, delivery.drain)  # before the consumer stops
        await delivery.start()
        self._fetch_task = asyncio.create_task(self._guard(self._fetch_loop()), name="pf-fetch")
        watch = self._liveness.watch_loop(consumer, self._stop)
        self._watch_task = asyncio.create_task(self._guard(watch), name="pf-watch")
        self._closing(stack, self._stop_tasks)
        self._liveness.restart()
        if self._state is State.STARTING:  # a first rebalance may already be under way
            self._state = State.RUNNING
        limits = self._limits
        self._log.info(
            "worker_started",
            **started_fields(s, backend=self.backend_name, health_port=self.health_port),
            output_max_message_bytes=limits.output_max_message_bytes,
            dlq_max_message_bytes=limits.dlq_max_message_bytes,
            output_compacted=limits.output_compacted,
        )
        self.started.set()

    async def _start_producer(self, stack: contextlib.AsyncExitStack) -> int:
        """Read the topics' limits, start the producer; returns the output partition count."""
        s = self.settings
        timeout = s.startup_timeout_seconds
        self._clients = clients = KafkaClients(s, on_token_refresh=self._token_refreshed)
        await check_connection(s, clients.connection, timeout)
        self._limits = limits = await topic_limits(clients, timeout)
        producer = clients.producer(max_batch_bytes=limits.batch_bytes)
        await start_with_retry(producer, s.bootstrap_servers, timeout)
        self._closing(stack, lambda d: stop_bounded(producer, d.remaining()))
        output_partitions = await check_topics(producer, s)
        self._publisher = publisher = Publisher(
            producer,
            output_topic=s.output_topic,
            output_partitions=output_partitions,
            dlq_topic=s.dlq_topic,
            metrics_topic=s.metrics_topic,
            worker_id=s.worker_id,
            backend=self.backend_name,
            logger=self._log,
            limits=limits,
            on_fatal=self._fail,
        )
        fields = started_fields(s, backend=self.backend_name, health_port=self.health_port)
        try:
            await publisher.announce(
                {"event": "worker_starting", "worker_id": s.worker_id, **fields}, timeout
            )
        except (AuthorizationError, PublishError) as exc:
            raise StartupError(str(exc)) from exc
        return output_partitions

    def _build_pipeline(self, output_partitions: int) -> tuple[AIOKafkaConsumer, DeliveryStrategy]:
        """The consumer and what works with it: fetcher, delivery, hand-over, reporter."""
        s = self.settings
        assert self._publisher is not None
        assert self._clients is not None
        listener = HandoverListener(
            lambda p: self._on_revoked(p), lambda p: self._on_assigned(p), self._fail
        )
        self._consumer = consumer = self._clients.consumer(listener)
        self._reporter = BatchReporter(
            consumer,
            self._publisher,
            self._budget,
            backend=self.backend_name,
            worker_id=s.worker_id,
            recent=self._recent_metrics,
            logger=self._log,
        )
        self._fetcher = Fetcher(
            consumer,
            s,
            self._budget,
            self._liveness,
            rebalancing=self._rebalancing,
            logger=self._log,
        )
        self._delivery = delivery = make_delivery(
            self._clients,
            consumer,
            self._publisher,
            self._settled,
            output_partitions=output_partitions,
            backend=self.backend_name,
            limits=self._limits,
            on_committed=self._liveness.progressed,
            on_fatal=self._fail,
            logger=self._log,
        )
        self._handover = Handover(
            self._fetcher,
            delivery,
            self._budget,
            self._failed,
            drain_seconds=s.rebalance_timeout_ms / 1250,  # 80% of the rebalance timeout
            on_begin=self._rebalance_began,
            on_end=self._rebalance_ended,
            logger=self._log,
        )
        return consumer, delivery

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
        self._failed.set()
        trace = None if isinstance(exc, AuthorizationError) else exc  # the message says it all
        self._log.error("worker_failed", error=f"{type(exc).__name__}: {exc}", exc_info=trace)
        self.request_stop()

    # -- fetch --------------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        assert self._fetcher is not None
        while not self._stop.is_set():
            try:
                fetched = await self._fetcher.fetch(self._stop)
            except asyncio.CancelledError:
                if self._stop.is_set():
                    return
                raise
            if fetched is not None:
                await self._process(*fetched)

    def _rebalancing(self) -> bool:
        return self._state is State.REBALANCING

    # -- one batch ----------------------------------------------------------------------------

    async def _process(self, data: Fetched, generation: int) -> None:
        """Run one fetched batch through the pipeline's stages and hand it to the delivery."""
        assert self._runner is not None
        assert self._delivery is not None
        assert self._fetcher is not None
        batch = new_batch(data, generation)
        self._budget.take(len(batch.messages), batch.nbytes)
        published = False
        try:
            with self._tracer.batch(batch) if self._tracer else contextlib.nullcontext():
                held = await self._run_or_hold(batch, data)
                if held is None:
                    return  # given up (stopping, or its partitions handed over): not committed
                fetcher = self._fetcher
                published = True
                await self._publish(held, lambda: fetcher.owned(generation))
        finally:
            if not published:
                self._budget.release(len(batch.messages), batch.nbytes)

    async def _publish(self, batch: Batch, owned: Callable[[], bool]) -> None:
        assert self._delivery is not None
        if self._tracer is None:
            await self._delivery.publish(batch, owned)
            return
        trace = self._tracer.headers()  # the batch span's context, not the publish step's
        for message in batch.messages:
            message.carry_trace(trace)
        with self._tracer.step("publish"):
            await self._delivery.publish(batch, owned)

    async def _run_or_hold(self, batch: Batch, data: Fetched) -> Batch | None:
        """The batch once its stages ran, held by the breaker while the backend is unavailable;
        None when it was given up (stopping, a rebalance, its assignment ended)."""
        assert self._fetcher is not None
        runner, fetcher, s = self._runner, self._fetcher, self.settings
        assert runner is not None
        trace_step = self._tracer.step if self._tracer else None

        async def run(attempt: Batch) -> None:
            await run_stages(
                attempt,
                runner,
                backend=self.backend_name,
                limits=self._limits,
                output_topic=s.output_topic,
                trace_step=trace_step,
            )

        def given_up(attempt: Batch) -> bool:
            # A rebalance waits for the budget to drain: let the batch go so it can.
            stopping = self._stop.is_set() or self._rebalancing()
            return stopping or not fetcher.owned(attempt.generation)

        return await self._breaker.run(
            batch,
            run,
            lambda: new_batch(data, batch.generation),  # the same messages, afresh
            hold=lambda seconds: fetcher.hold(seconds, self._stop),
            given_up=given_up,
        )

    async def _settled(self, batch: Batch, settled: Settled) -> None:
        """The broker acknowledged ``batch``: report it, release the budget."""
        assert self._reporter is not None
        self._reporter.fill(batch.stats, settled)
        self._budget.release(len(batch.messages), batch.nbytes)
        self._liveness.progressed()
        self.batches += 1
        for name, lag in batch.stats.consumer_lag.items():
            topic, _, partition = name.rpartition("/")
            self._lag[(topic, int(partition))] = lag
        self.metrics.observe_batch(batch.stats, settled.letter_kinds)
        await self._reporter.emit(batch.stats)

    # -- rebalance (the listener's entry points) ---------------------------------------------

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        assert self._handover is not None
        await self._handover.revoked(revoked)

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        assert self._handover is not None
        await self._handover.assigned_(assigned)

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
        self._lag = {k: v for k, v in self._lag.items() if TopicPartition(*k) in assigned}
        return WorkerState(
            ready=self._ready_at_scrape,
            in_flight_records=self._budget.records,
            in_flight_bytes=self._budget.bytes,
            assigned_partitions=len(assigned),
            paused_partitions=0 if self._fetcher is None else self._fetcher.paused_count,
            commits=0 if self._delivery is None else self._delivery.commits,
            rebalances=self.assignments,
            breaker_open=self._breaker.is_open,
            breaker_open_seconds=self._breaker.open_seconds,
            breaker_trips=self._breaker.trips,
            consumer_lag=dict(self._lag),
        )

    async def _healthz(self) -> tuple[bool, dict[str, Any]]:
        tasks = [t for t in (self._fetch_task, self._watch_task) if t is not None]
        dead = [t.get_name() for t in tasks if t.done()]
        if self._delivery is not None:
            dead += self._delivery.dead_tasks()
        if self._failure is not None or (dead and not self._stop.is_set()):
            return False, {"error": f"{type(self._failure).__name__}: {self._failure}"}
        stuck = 0.0 if self._runner is None else self._runner.stuck_seconds()
        if stuck > self.settings.backend_timeout_grace_seconds:
            return False, {
                "error": f"a backend call has been running for {stuck:.0f}s, past "
                f"--backend-timeout-seconds and --backend-timeout-grace-seconds: restart me"
            }
        return True, {"worker_id": self.settings.worker_id}

    async def _readyz(self) -> tuple[bool, dict[str, Any]]:
        reasons: list[str] = []
        if self._state is State.STARTING:
            reasons.append("starting")
        if self._stop.is_set():
            reasons.append("stopping")
        if not self.assigned:
            reasons.append("no partitions assigned")
        reasons += self._liveness.reasons()
        if self._breaker.reason is not None:
            reasons.append(self._breaker.reason)
        if self._probe_executor is not None and not await ask_ready(
            self._backend, self._probe_executor, _READY_PROBE_TIMEOUT
        ):
            reasons.append("backend not ready")
        return not reasons, {
            "reasons": reasons,
            "partitions": len(self.assigned),
            "in_flight_records": self._budget.records,
        }

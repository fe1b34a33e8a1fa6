"""The worker's lifecycle and main loop.

Two tasks form a pipeline, bounded by an :class:`~worker.backpressure.InFlightBudget`:

* the fetch loop takes a batch with ``getmany``, registers its offsets, decodes it, runs the
  backend in the thread executor (isolating poison messages), encodes the outputs and queues
  one message per input message (output or dead letter) on the producer, in input order
  (outputs in one batch per output partition, see :mod:`worker.publisher`);
* the ack loop settles each batch's deliveries in order, acknowledges their offsets, commits
  the contiguous acknowledged prefix of every partition, releases the budget and emits the
  ``batch_metrics`` event.

So batch *n+1* runs in the backend while batch *n* waits for its broker acknowledgements, and
nothing is committed before its outputs and dead letters are acknowledged (at-least-once).
When the budget is full the assigned partitions are paused until the ack loop catches up.

Start-up reads the output and dead-letter topics' limits (:func:`~worker._kafka.topic_limits`)
before it builds the producer, so that nothing the broker would refuse is ever sent.

Shutdown (:meth:`Worker.request_stop`, SIGTERM/SIGINT in the CLI) stops fetching, lets
in-flight batches finish and publish, commits, then stops the consumer and producer, all under
one deadline of ``shutdown_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord

from worker._kafka import (
    make_consumer,
    make_producer,
    output_partition_count,
    start_with_retry,
    stop_bounded,
    topic_limits,
)
from worker.backpressure import InFlightBudget
from worker.codec import DeadLetter, Decoded, decode, encode_output, locate
from worker.connectivity import BrokerWatch
from worker.errors import DecodeError, OutputEncodeError, StartupError
from worker.health import HealthServer
from worker.metrics import BATCH_METRICS_EVENT, BatchStats, batch_metrics, partition_ranges
from worker.offsets import OffsetTracker
from worker.publisher import Delivery, Prepared, Publisher
from worker.runner import BatchRunner, Failure, SupportsRun
from worker.settings import WorkerSettings
from worker.transactions import TransactionalPublisher

__all__ = ["EXIT_FAILURE", "EXIT_OK", "Worker"]

EXIT_OK = 0
EXIT_FAILURE = 1
_READY_PROBE_TIMEOUT = 2.0
_KAFKA_PROBE_TIMEOUT = 5.0


@dataclass(slots=True)
class _Item:
    record: ConsumerRecord[bytes, bytes]
    tp: TopicPartition
    epoch: int
    decoded: Decoded | None = None
    letter: DeadLetter | None = None


@dataclass(slots=True)
class _Batch:
    deliveries: list[Delivery]
    rows: list[int]  # output rows of each delivery, should it be published as an output
    nbytes: int
    stats: BatchStats


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    # aiokafka logs and swallows listener errors; a failed hand-over must stop the worker.
    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            await self._worker._on_revoked(set(revoked))
        except Exception as exc:
            self._worker._fail(exc)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self._worker._on_assigned(set(assigned))
        except Exception as exc:
            self._worker._fail(exc)


class Worker:
    """One worker process's Kafka pipeline around a loaded backend.

    ``await worker.run()`` starts everything, runs until :meth:`request_stop` (or a fatal
    error) and shuts down; it returns the exit code. ``started`` is set once the worker is
    consuming and ``health_port`` is known. For observation (tests, embedding): ``batches``,
    ``commits``, ``pauses``, ``assignments``, ``budget`` (in-flight peaks) and
    ``recent_metrics`` (the last 256 ``batch_metrics`` events).
    """

    def __init__(self, settings: WorkerSettings, backend: SupportsRun) -> None:
        self.settings = settings
        self._backend = backend
        self.backend_name = type(backend).__name__
        self._log = structlog.get_logger("packflow.worker").bind(worker_id=settings.worker_id)
        self._tracker = OffsetTracker()
        self._budget = InFlightBudget(settings.max_in_flight_records, settings.max_in_flight_bytes)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._publisher: Publisher | None = None
        self._runner: BatchRunner | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._probe_executor: ThreadPoolExecutor | None = None
        self._health: HealthServer | None = None
        self._queue: asyncio.Queue[_Batch | None] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._failed = asyncio.Event()
        self._commit_wanted = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._commits_done = False
        self.started = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._fetch_task: asyncio.Task[None] | None = None
        self._in_getmany = False
        self._rebalancing = False
        # Bumped when a revocation ends and when an assignment starts: a fetch that spans a
        # change is discarded, and a transaction of an older generation is not committed.
        self._generation = 0
        self._to_seek: set[TopicPartition] = set()
        self._rewind_from: dict[TopicPartition, int] = {}
        self._watch = BrokerWatch(self._log)
        self._watch_task: asyncio.Task[None] | None = None
        self._paused: set[TopicPartition] = set()
        self._assigned: set[TopicPartition] = set()
        self._last_progress = self._idle_since = time.monotonic()
        self._last_idle_check = 0.0
        self._failure: BaseException | None = None
        self._txn: TransactionalPublisher | None = None
        self.health_port: int | None = None
        self.batches = 0
        self.commits = 0
        self.pauses = 0
        self.recent_metrics: collections.deque[dict[str, Any]] = collections.deque(maxlen=256)
        self.assignments = 0

    # -- public API ---------------------------------------------------------------------------

    @property
    def budget(self) -> InFlightBudget:
        """The in-flight budget (peaks are useful to observe backpressure)."""
        return self._budget

    @property
    def failure(self) -> BaseException | None:
        """The fatal error that stopped the worker, if any."""
        return self._failure

    def request_stop(self) -> None:
        """Ask the worker to stop fetching, drain, commit and shut down."""
        if not self._stop.is_set():
            self._log.info("worker_stopping", in_flight_records=self._budget.records)
        self._stop.set()
        if self._in_getmany and self._fetch_task is not None:
            self._fetch_task.cancel()

    def force_stop(self) -> None:
        """Stop now: cancel the work in flight without committing it (exit code 1)."""
        self._force.set()
        self.request_stop()

    async def run(self) -> int:
        """Start, run until stopped, shut down; returns the process exit code."""
        try:
            await self._startup()
            await self._stop.wait()
        finally:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.settings.shutdown_timeout_seconds
            clean = await self._shutdown(deadline)
        if self._failure is not None:
            return EXIT_FAILURE
        return EXIT_OK if clean else EXIT_FAILURE

    # -- startup ------------------------------------------------------------------------------

    async def _startup(self) -> None:
        s = self.settings
        self._executor = ThreadPoolExecutor(s.executor_threads, thread_name_prefix="pf-backend")
        self._probe_executor = ThreadPoolExecutor(1, thread_name_prefix="pf-probe")
        self._runner = BatchRunner(self._backend, self._executor, parallel=s.executor_threads)
        self._health = HealthServer(healthz=self._healthz, readyz=self._readyz, port=s.health_port)
        try:
            await self._health.start()
        except OSError as exc:
            raise StartupError(f"health port {s.health_port} cannot be bound: {exc}") from exc
        self.health_port = self._health.port
        self._log.info("health_listening", health_port=self.health_port)

        timeout = s.startup_timeout_seconds
        limits = await topic_limits(s, timeout)
        self._producer = make_producer(s, max_batch_bytes=limits.batch_bytes)
        await start_with_retry(self._producer, s.bootstrap_servers, timeout)
        await output_partition_count(self._producer, s.input_topic, timeout)
        output_partitions = await output_partition_count(self._producer, s.output_topic, timeout)
        await output_partition_count(self._producer, s.dlq_topic, timeout)
        if s.metrics_topic is not None:
            await output_partition_count(self._producer, s.metrics_topic, timeout)
        self._publisher = Publisher(
            self._producer,
            output_topic=s.output_topic,
            output_partitions=output_partitions,
            dlq_topic=s.dlq_topic,
            metrics_topic=s.metrics_topic,
            worker_id=s.worker_id,
            backend=self.backend_name,
            logger=self._log,
            limits=limits,
        )
        if s.delivery == "exactly-once":
            self._txn = TransactionalPublisher(
                s,
                output_partitions=output_partitions,
                backend=self.backend_name,
                logger=self._log,
                limits=limits,
            )
        self._consumer = make_consumer(s, _Listener(self))
        await start_with_retry(self._consumer, s.bootstrap_servers, s.startup_timeout_seconds)

        self._fetch_task = asyncio.create_task(self._guard(self._fetch_loop()), name="pf-fetch")
        ack_task = asyncio.create_task(self._guard(self._ack_loop()), name="pf-ack")
        commit_task = asyncio.create_task(self._guard(self._commit_loop()), name="pf-commit")
        self._watch_task = asyncio.create_task(self._guard(self._watch_loop()), name="pf-watch")
        self._tasks = [self._fetch_task, ack_task, commit_task, self._watch_task]
        self._last_progress = time.monotonic()
        self._log.info(
            "worker_started",
            backend=self.backend_name,
            health_port=self.health_port,
            input_topic=s.input_topic,
            output_topic=s.output_topic,
            dlq_topic=s.dlq_topic,
            metrics_topic=s.metrics_topic,
            output_max_message_bytes=limits.output_max_message_bytes,
            dlq_max_message_bytes=limits.dlq_max_message_bytes,
            output_compacted=limits.output_compacted,
            group_id=s.group_id,
            delivery=s.delivery,
            max_batch_size=s.max_batch_size,
            executor_threads=s.executor_threads,
        )
        self.started.set()

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
        self._log.error("worker_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        self.request_stop()

    # -- fetch stage --------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        assert self._consumer is not None
        s = self.settings
        while not self._stop.is_set():
            if self._rebalancing:
                await self._budget.wait_changed(0.1)
                continue
            if self._to_seek:
                await self._seek_assigned()
                continue
            room = self._budget.room()
            if room == 0:
                self._pause()
                await self._budget.wait_changed(0.5)
                continue
            self._resume()
            generation = self._generation
            self._in_getmany = True
            try:
                data = await self._consumer.getmany(
                    timeout_ms=s.max_batch_wait_ms, max_records=min(s.max_batch_size, room)
                )
            except asyncio.CancelledError:
                if self._stop.is_set():
                    return
                raise
            finally:
                self._in_getmany = False
            if self._rebalancing or generation != self._generation:
                self._discard(data)
            elif data:
                self._last_progress = self._idle_since = time.monotonic()
                self._watch.reached()
                await self._process(data, generation)
            else:
                await self._check_idle()

    def _discard(self, data: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """Drop records fetched across a rebalance; the next seek rewinds to before them.

        aiokafka sets a new assignment before ``on_partitions_assigned`` runs, so a ``getmany``
        already waiting can return records of partitions that are not fenced and positioned
        yet. They are processed again, from the committed offset, once the assignment is done.
        """
        for tp, records in data.items():
            first = records[0].offset
            self._rewind_from[tp] = min(first, self._rewind_from.get(tp, first))
        if data:
            self._log.info(
                "fetch_discarded",
                reason="rebalance",
                records=sum(len(records) for records in data.values()),
                partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in data),
            )

    async def _seek_assigned(self) -> None:
        """Position each newly assigned partition at its committed offset, read now.

        Runs in the fetch loop before any ``getmany`` of a new assignment, after
        :meth:`_on_assigned` fenced earlier owners (exactly-once), so the offset read is the
        one their last transaction committed. A partition without a committed offset keeps
        aiokafka's reset position, or goes back to the first record discarded for it.
        """
        assert self._consumer is not None
        consumer = self._consumer
        generation = self._generation
        partitions = sorted(self._to_seek & set(consumer.assignment()))
        try:
            committed = await asyncio.wait_for(
                asyncio.gather(*(consumer.committed(tp) for tp in partitions)),
                _KAFKA_PROBE_TIMEOUT * 2,
            )
        except (KafkaError, TimeoutError) as exc:
            self._watch.failed(exc)
            with contextlib.suppress(TimeoutError):  # pacing while the broker does not answer
                await asyncio.wait_for(self._stop.wait(), 0.5)
            return
        self._watch.reached()
        if generation != self._generation or self._rebalancing:
            return  # a newer assignment seeks again
        assignment = set(consumer.assignment())
        for tp, offset in zip(partitions, committed, strict=True):
            target = offset if offset is not None else self._rewind_from.get(tp)
            if target is not None and tp in assignment:
                consumer.seek(tp, target)
        self._to_seek.clear()
        self._rewind_from.clear()
        self._restart_idle_timers()

    def _restart_idle_timers(self) -> None:
        self._last_progress = self._idle_since = self._last_idle_check = time.monotonic()

    async def _check_idle(self) -> None:
        """Count an empty fetch as progress only when the partitions are really caught up.

        aiokafka's fetcher can stall silently (aio-libs/aiokafka#1037): ``getmany`` returns
        nothing while messages wait. After ``stall/3`` seconds (at most 5) without records,
        the end offsets are asked for; lag on a partition that is not paused means a stall:
        ``/readyz`` fails once it lasts ``readiness_stall_seconds``.
        """
        now = time.monotonic()
        interval = min(5.0, self.settings.readiness_stall_seconds / 3)
        if now - self._idle_since < interval or now - self._last_idle_check < interval:
            return
        self._last_idle_check = now
        lagging = await self._lagging_partitions()
        if lagging is None:  # the broker did not answer: never progress
            return
        if not lagging:
            self._last_progress = now
            return
        self._log.warning(
            "fetch_stalled",
            partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in lagging),
            idle_s=round(now - self._idle_since, 1),
        )

    async def _lagging_partitions(self) -> set[TopicPartition] | None:
        """Assigned, unpaused partitions with messages beyond the position; None if unknown.

        In exactly-once delivery the consumer reads committed, so its end offsets are the last
        stable offsets: an open input transaction is not lag.
        """
        assert self._consumer is not None
        partitions = set(self._consumer.assignment()) - self._paused
        if not partitions:
            return set()
        consumer = self._consumer

        async def lagging() -> set[TopicPartition]:
            ends = await consumer.end_offsets(list(partitions))
            return {tp for tp in partitions if ends.get(tp, 0) > await consumer.position(tp)}

        try:
            found = await asyncio.wait_for(lagging(), _KAFKA_PROBE_TIMEOUT)
        except (KafkaError, TimeoutError, AssertionError) as exc:
            self._watch.failed(exc)
            return None
        self._watch.reached()
        return found

    async def _watch_loop(self) -> None:
        """Probe the broker when nothing has been heard from it for a while."""
        assert self._consumer is not None
        interval = min(5.0, self.settings.readiness_stall_seconds / 3)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), min(1.0, interval))
            if self._stop.is_set() or self._watch.quiet_for() < interval:
                continue
            try:
                await asyncio.wait_for(self._consumer.topics(), _KAFKA_PROBE_TIMEOUT)
            except (KafkaError, TimeoutError) as exc:
                self._watch.failed(exc)
            else:
                self._watch.reached()

    def _pause(self) -> None:
        assert self._consumer is not None
        assignment = set(self._consumer.assignment())
        todo = assignment - self._paused
        if todo:
            self._consumer.pause(*todo)
            self._paused |= todo
            self.pauses += 1
            self._log.debug("fetch_paused", partitions=len(self._paused))

    def _resume(self) -> None:
        if self._paused:
            assert self._consumer is not None
            assignment = set(self._consumer.assignment())
            self._consumer.resume(*(self._paused & assignment))
            self._paused.clear()

    async def _process(
        self, data: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], generation: int
    ) -> None:
        assert self._runner is not None
        assert self._publisher is not None
        items: list[_Item] = []
        nbytes = 0
        register = self._tracker.register
        for tp, records in data.items():
            epoch = 0 if self._txn is not None else register(tp, [r.offset for r in records])
            for record in records:
                items.append(_Item(record, tp, epoch))
                nbytes += len(record.value or b"") + len(record.key or b"")
        self._budget.take(len(items), nbytes)
        stats = BatchStats(batch_size=len(items))
        stats.partitions = partition_ranges(
            (tp.topic, tp.partition, offset)
            for tp, records in data.items()
            for offset in (records[0].offset, records[-1].offset)
        )

        started = time.perf_counter()
        groups: list[list[dict[str, Any]]] = []
        for item in items:
            try:
                item.decoded = decode(item.record.value)
            except DecodeError as exc:
                item.letter = DeadLetter.of(item.record, type(exc).__name__, str(exc), "decode")
                groups.append([])
            else:
                groups.append(item.decoded.records)
                stats.records_in += len(item.decoded.records)
        stats.decode_ms = (time.perf_counter() - started) * 1000.0

        run = await self._runner.run(groups)
        stats.steps_ms = run.steps_ms
        stats.executor_queue_wait_ms = run.executor_queue_wait_ms
        stats.backend_calls = run.backend_calls
        stats.failed_backend_calls = run.failed_calls

        started = time.perf_counter()
        prepared: list[Prepared] = []
        for item, result in zip(items, run.results, strict=True):
            record = item.record
            letter = item.letter
            if letter is None and isinstance(result, Failure):
                letter = self._failure_letter(record, result)
            if letter is None:
                assert item.decoded is not None
                assert not isinstance(result, Failure)
                try:
                    value = encode_output(result, item.decoded.is_array)
                except OutputEncodeError as exc:
                    message = f"{locate(record)}: {exc}"
                    letter = DeadLetter.of(record, type(exc).__name__, message, "publish")
                else:
                    prepared.append(Prepared(record, item.tp, value, None, len(result), item.epoch))
                    continue
            prepared.append(Prepared(record, item.tp, None, letter, epoch=item.epoch))
        if self._txn is not None:
            await self._publish_transactions(
                self._txn, prepared, stats, nbytes, started, generation
            )
            return
        deliveries = await self._publisher.send_outputs(prepared)
        stats.publish_ms = (time.perf_counter() - started) * 1000.0
        rows = [p.rows for p in prepared]
        await self._queue.put(_Batch(deliveries, rows, nbytes, stats))

    async def _publish_transactions(
        self,
        txn: TransactionalPublisher,
        prepared: list[Prepared],
        stats: BatchStats,
        nbytes: int,
        started: float,
        generation: int,
    ) -> None:
        """Exactly-once: one transaction per input partition of the batch, then finish it.

        A transaction commits only while the batch's assignment generation is current: once a
        revocation has ended, the partition's next owner processes these messages.
        """
        by_partition: dict[TopicPartition, list[Prepared]] = {}
        for p in prepared:
            by_partition.setdefault(p.tp, []).append(p)
        published: list[Prepared] = []
        for tp, share in by_partition.items():
            if await txn.publish(tp, share, lambda: generation == self._generation):
                published.extend(share)
        stats.publish_ms = (time.perf_counter() - started) * 1000.0
        stats.dead_letters = sum(1 for p in published if p.letter is not None)
        stats.outputs = len(published) - stats.dead_letters
        stats.records_out = sum(p.rows for p in published if p.letter is None)
        self._finish(stats, [p.record for p in published], len(prepared), nbytes)
        await self._emit(stats)

    def _finish(
        self,
        stats: BatchStats,
        records: list[ConsumerRecord[bytes, bytes]],
        taken: int,
        nbytes: int,
    ) -> None:
        """Fill latency, lag and in-flight figures, release the budget, count the batch."""
        now_ms = time.time() * 1000.0
        stats.latencies_ms = [now_ms - r.timestamp for r in records if r.timestamp >= 0]
        self._fill_lag(stats)
        stats.in_flight_records = self._budget.records
        stats.in_flight_bytes = self._budget.bytes
        self._budget.release(taken, nbytes)
        self._last_progress = time.monotonic()
        self._watch.reached()
        self.batches += 1

    def _failure_letter(self, record: ConsumerRecord[bytes, bytes], failure: Failure) -> DeadLetter:
        where = locate(record)
        on = where if failure.record_index is None else f"record {failure.record_index} of {where}"
        message = f"step {failure.step!r} of {self.backend_name} failed on {on}: {failure.message}"
        return DeadLetter.of(
            record, failure.error_type, message, failure.step, failure.record_index
        )

    # -- ack stage ----------------------------------------------------------------------------

    async def _ack_loop(self) -> None:
        assert self._publisher is not None
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            stats = batch.stats
            for delivery, rows in zip(batch.deliveries, batch.rows, strict=True):
                delivery = await self._publisher.settle(delivery)
                if delivery.is_dead_letter:
                    stats.dead_letters += 1
                else:
                    stats.outputs += 1
                    stats.records_out += rows
                self._tracker.ack(delivery.tp, delivery.record.offset, delivery.epoch)
            self._commit_wanted.set()
            records = [d.record for d in batch.deliveries]
            self._finish(stats, records, len(batch.deliveries), batch.nbytes)
            await self._emit(stats)

    async def _commit_loop(self) -> None:
        """Commit whenever acknowledgements moved a position; commits coalesce under load."""
        while not self._commits_done:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self._commit()

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        assert self._consumer is not None
        # One commit at a time, snapshot included, so positions never go backwards.
        async with self._commit_lock:
            offsets = self._tracker.to_commit()
            allowed = only if only is not None else set(self._consumer.assignment())
            offsets = {tp: off for tp, off in offsets.items() if tp in allowed}
            if not offsets:
                return
            try:
                await self._consumer.commit(offsets)
            except CommitFailedError as exc:
                self._log.warning("commit_failed", error=str(exc), reason="group rebalanced")
                return
            except KafkaError as exc:
                self._log.warning("commit_failed", error=f"{type(exc).__name__}: {exc}")
                return
            self._tracker.mark_committed(offsets)
            self._watch.reached()
            self.commits += 1

    def _fill_lag(self, stats: BatchStats) -> None:
        assert self._consumer is not None
        for r in stats.partitions:
            tp = TopicPartition(r.topic, r.partition)
            try:
                highwater = self._consumer.highwater(tp)
            except (KafkaError, AssertionError, KeyError):
                continue
            if highwater is not None:
                stats.consumer_lag[f"{r.topic}/{r.partition}"] = max(
                    0, highwater - r.last_offset - 1
                )

    async def _emit(self, stats: BatchStats) -> None:
        assert self._publisher is not None
        fields = batch_metrics(stats, backend=self.backend_name, worker_id=self.settings.worker_id)
        self.recent_metrics.append(fields)
        self._log.info(BATCH_METRICS_EVENT, **{k: v for k, v in fields.items() if k != "worker_id"})
        await self._publisher.publish_event({"event": BATCH_METRICS_EVENT, **fields})

    # -- rebalance ----------------------------------------------------------------------------

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._rebalancing = True
        drained = await self._drain(self.settings.rebalance_timeout_ms / 1250)
        if self._consumer is not None and revoked and self._txn is None:
            await self._commit(only=revoked)
        self._generation += 1
        if self._txn is not None:
            await self._txn.revoke(revoked)
        self._tracker.forget(revoked)
        self._paused -= revoked
        self._assigned -= revoked
        self._log.info(
            "partitions_revoked",
            partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in revoked),
            drained=drained,
        )

    async def _drain(self, seconds: float) -> bool:
        """Wait for the work in flight to finish, unless a fatal error means it never will."""
        if self._failed.is_set():
            return self._budget.empty
        empty = asyncio.ensure_future(self._budget.wait_empty(seconds))
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait({empty, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            empty.cancel()
        return self._budget.empty

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._generation += 1
        if self._txn is not None:
            # Fence earlier owners first (their transactions complete or abort); the fetch
            # loop then reads the offsets those transactions committed (_seek_assigned).
            await self._txn.assign(set(assigned))
        self._to_seek = set(assigned)
        self._assigned = set(assigned)
        self.assignments += 1
        self._paused &= self._assigned
        self._rebalancing = False
        self._restart_idle_timers()
        self._log.info(
            "partitions_assigned",
            partitions=sorted(f"{tp.topic}/{tp.partition}" for tp in assigned),
        )

    # -- health -------------------------------------------------------------------------------

    async def _healthz(self) -> tuple[bool, dict[str, Any]]:
        dead = [t.get_name() for t in self._tasks if t.done()]
        if self._failure is not None or (dead and not self._stop.is_set()):
            return False, {"error": f"{type(self._failure).__name__}: {self._failure}"}
        return True, {"worker_id": self.settings.worker_id}

    async def _readyz(self) -> tuple[bool, dict[str, Any]]:
        reasons: list[str] = []
        if not self.started.is_set():
            reasons.append("starting")
        if self._stop.is_set():
            reasons.append("stopping")
        if not self._assigned:
            reasons.append("no partitions assigned")
        stall = self.settings.readiness_stall_seconds
        unreachable = self._watch.unreachable_for()
        if unreachable is not None and unreachable > stall:
            reasons.append(f"Kafka unreachable for {unreachable:.0f} s")
        stalled = time.monotonic() - self._last_progress
        if stalled > stall:
            reasons.append(f"no fetch progress for {stalled:.0f}s")
        if not await self._backend_ready():
            reasons.append("backend not ready")
        return not reasons, {
            "reasons": reasons,
            "partitions": len(self._assigned),
            "in_flight_records": self._budget.records,
        }

    async def _backend_ready(self) -> bool:
        ready = getattr(self._backend, "ready", None)
        if ready is None or self._probe_executor is None:
            return True
        loop = asyncio.get_running_loop()
        try:
            return bool(
                await asyncio.wait_for(
                    loop.run_in_executor(self._probe_executor, ready), _READY_PROBE_TIMEOUT
                )
            )
        except Exception:
            return False

    # -- shutdown -----------------------------------------------------------------------------

    async def _shutdown(self, deadline: float) -> bool:
        loop = asyncio.get_running_loop()

        def remaining() -> float:
            return 0.0 if self._force.is_set() else max(0.0, deadline - loop.time())

        clean = True
        self._stop.set()
        if self._fetch_task is not None:
            if self._in_getmany:
                self._fetch_task.cancel()
            clean &= await self._wait_task(self._fetch_task, remaining())
        if self._watch_task is not None:
            clean &= await self._wait_task(self._watch_task, remaining())
        if self._tasks:
            await self._queue.put(None)
            clean &= await self._wait_task(self._tasks[1], remaining())
            self._commits_done = True
            self._commit_wanted.set()
            clean &= await self._wait_task(self._tasks[2], remaining())
        if self._consumer is not None:
            if clean:
                try:
                    await asyncio.wait_for(self._commit(), remaining())
                except TimeoutError:
                    clean = False
            clean &= await stop_bounded(self._consumer, remaining())
        if self._txn is not None:
            clean &= await self._txn.close(remaining())
        if self._producer is not None:
            clean &= await stop_bounded(self._producer, remaining())
        if self._health is not None:
            await self._health.stop()
        for executor in (self._executor, self._probe_executor):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        self._log.info(
            "worker_stopped",
            clean=clean,
            batches=self.batches,
            commits=self.commits,
            error=None if self._failure is None else str(self._failure),
        )
        return clean

    async def _wait_task(self, task: asyncio.Task[None], seconds: float) -> bool:
        if task.done():
            return True
        forced = asyncio.create_task(self._force.wait())
        try:
            await asyncio.wait({task, forced}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()
        if task.done():
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._log.warning("shutdown_deadline_exceeded", task=task.get_name())
        return False

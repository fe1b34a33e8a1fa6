"""``packflow-worker redrive``: dead letters back to a topic, resumable, with loop protection.

One run, :func:`redrive`:

1. connects as the worker does (:class:`~worker.connection_settings.ConnectionSettings`,
   :func:`~worker._kafka.check_connection`) and checks that the topics exist;
2. reads the dead-letter topic's end offsets first: the run stops there, so a dead letter
   written meanwhile waits for the next run;
3. reads each partition from its consumer group's committed offset (else the beginning) and
   decides per message (:func:`~worker.redrive.plan.plan`); it sends each original value with
   its key and headers (``acks=all``, idempotent producer, paced by ``rate``);
4. once the broker acknowledged a fetched chunk's sends, commits each partition's next offset:
   past every dead letter read, whether sent, skipped or not selected. After a failed send it
   commits only up to that dead letter, so the next run starts with it.

A dry run does 1-3 without a producer and commits nothing. The consumer is assigned every
partition (no group join): run one redrive per group at a time.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from worker._kafka import (
    ask,
    check_connection,
    close_admin,
    send,
    send_error,
    start_with_retry,
    stop_bounded,
)
from worker._rate import TokenBucket
from worker.clients import connection_options, producer_options
from worker.codec import DeadLetter
from worker.errors import (
    AuthorizationError,
    KafkaFatalError,
    KafkaUnanswered,
    PublishError,
    StartupError,
    WorkerError,
)
from worker.redrive.options import RedriveOptions
from worker.redrive.plan import NotSelected, Resend, Skip, plan
from worker.redrive.reader import BoundedReader
from worker.redrive.report import RedriveReport

__all__ = ["redrive"]

_CHUNK = 500  # most dead letters fetched, sent and acknowledged before a commit
_STALL_SECONDS = 30.0  # no dead letter arrives although the end offsets say more exist
_COMMIT_SECONDS = 15.0
_CLOSE_SECONDS = 10.0
_CLIENT_ID = "packflow-redrive"


async def redrive(options: RedriveOptions, *, stop: asyncio.Event | None = None) -> RedriveReport:
    """Run one redrive; returns what it did (``report.failure`` when a send failed).

    Raises :class:`StartupError` when it cannot start (connection, authentication, a missing
    topic). Setting ``stop`` ends the run after the sends in flight are acknowledged and
    committed (``report.interrupted``).
    """
    run = _Run(options, stop or asyncio.Event())
    async with contextlib.AsyncExitStack() as stack:
        try:
            await run.start(stack)
        except (KafkaUnanswered, KafkaFatalError) as exc:
            raise StartupError(str(exc)) from exc
        await run.run()
    return run.report


class _Run:
    """The state of one run: clients, positions, pacing and the report."""

    def __init__(self, options: RedriveOptions, stop: asyncio.Event) -> None:
        self.options = options
        self.report = RedriveReport(
            dlq_topic=options.dlq_topic,
            group_id=options.group,
            dry_run=options.dry_run,
            selection=str(options.selection),
        )
        self._stop = stop
        self._bucket = (
            None if options.rate is None else TokenBucket(options.rate, burst=_burst(options.rate))
        )
        self._sent = 0
        self._partitions: dict[str, int] = {}
        self._looked_up: set[str] = set()
        self._admin: AIOKafkaAdminClient | None = None
        self._reader: BoundedReader | None = None
        self._producer: AIOKafkaProducer | None = None

    @property
    def _timeout(self) -> float:
        return self.options.startup_timeout_seconds

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        """Connect, check the topics, read the end offsets and the group's positions."""
        o, s = self.options, self.options.connection
        connection = connection_options(s)
        await check_connection(s, connection, self._timeout)
        client_options = s.client_options
        admin = AIOKafkaAdminClient(**connection, client_id=_CLIENT_ID, **client_options.admin)
        try:
            await ask(admin.start(), self._timeout, "starting the Kafka admin client")
        except (KafkaUnanswered, AuthorizationError) as exc:
            await close_admin(admin)
            raise StartupError(str(exc)) from exc
        stack.push_async_callback(close_admin, admin)
        self._admin = admin
        await self._list_topics()
        missing = "does not exist (or this principal may not Describe it)"
        if o.dlq_topic not in self._partitions:
            raise StartupError(f"dead-letter topic {o.dlq_topic!r} {missing}")
        if o.target_topic is not None and o.target_topic not in self._partitions:
            raise StartupError(f"target topic {o.target_topic!r} {missing}")

        consumer = AIOKafkaConsumer(
            **connection,
            client_id=_CLIENT_ID,
            group_id=o.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # never bring back a dead letter of an aborted exactly-once transaction
            isolation_level="read_committed",
            **client_options.consumer,
        )
        await start_with_retry(consumer, s.bootstrap_servers, self._timeout)
        stack.push_async_callback(stop_bounded, consumer, _CLOSE_SECONDS)
        self._reader = BoundedReader(consumer, o.dlq_topic, o.group)
        await self._reader.start(self._partitions[o.dlq_topic], self._timeout)
        self.report.end_offsets = self._reader.end_offsets
        if not o.dry_run:
            producer = AIOKafkaProducer(
                **producer_options(s, connection, client_id=_CLIENT_ID, linger_ms=5)
            )
            await start_with_retry(producer, s.bootstrap_servers, self._timeout)
            stack.push_async_callback(stop_bounded, producer, _CLOSE_SECONDS)
            self._producer = producer

    async def _list_topics(self) -> None:
        assert self._admin is not None
        topics = await ask(self._admin.describe_topics(), self._timeout, "listing the topics")
        self._partitions = {
            t["topic"]: len(t["partitions"]) for t in topics if t["error_code"] == 0
        }

    def _halted(self) -> bool:
        return self.report.stopped is not None or self.report.failure is not None

    async def run(self) -> None:
        """Read every partition up to its end offset (or the limit, a failure, a signal)."""
        reader = self._reader
        assert reader is not None
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while not reader.done and not self._halted():
            if self._stop.is_set():
                self._interrupt()
                break
            try:
                chunk = await reader.fetch(_CHUNK)
            except KafkaFatalError as exc:
                self.report.failure = str(exc)
                break
            if chunk:
                last_progress = loop.time()
                reader.handled(await self._handle(chunk))
                if not self.options.dry_run:
                    await self._commit(reader)
            elif not reader.done and loop.time() - last_progress > _STALL_SECONDS:
                self.report.failure = (
                    f"no dead letter arrived for {_STALL_SECONDS:g}s from {self.options.dlq_topic}"
                    f" (partition@offset {reader.positions()}) although its end offsets say"
                    " more exist"
                )

    async def _commit(self, reader: BoundedReader) -> None:
        failed = await reader.commit(_COMMIT_SECONDS)
        if failed:
            failed += " (the next run reads this chunk again)"
            self.report.failure = (
                f"{self.report.failure}; {failed}" if self.report.failure else failed
            )
        elif self.report.failure is not None:
            self.report.failure += "; committed what the broker acknowledged"

    def _interrupt(self) -> None:
        self.report.stopped = "stopped by a signal"
        self.report.interrupted = True

    async def _handle(self, chunk: list[ConsumerRecord[bytes, bytes]]) -> dict[TopicPartition, int]:
        """Decide, send and count the dead letters of ``chunk`` in order; returns each
        partition's offset after those fully handled (acknowledged, or counted)."""
        o = self.options
        sends: list[tuple[ConsumerRecord[bytes, bytes], Resend, asyncio.Future[object]]] = []
        handled: dict[TopicPartition, int] = {}
        for record in chunk:
            if self._stop.is_set():
                self._interrupt()
                break
            if o.limit is not None and self._sent >= o.limit:
                self.report.stopped = f"--limit {o.limit} reached"
                break
            location = f"{record.topic}/{record.partition}@{record.offset}"
            decision = await self._decide(record)
            if self._halted():
                break
            if isinstance(decision, NotSelected):
                self.report.add_not_selected(decision.row)
            elif isinstance(decision, Skip):
                self.report.add_skipped(decision.row, decision.reason, location)
            elif o.dry_run:
                self.report.add_redriven(decision.row, decision.topic)
                self._sent += 1
            else:
                future = await self._send(decision, location)
                if future is None:
                    break
                sends.append((record, decision, future))
                self._sent += 1
            handled[_tp(record)] = record.offset + 1
        results = await asyncio.gather(*(future for _, _, future in sends), return_exceptions=True)
        for (record, resend, _), result in zip(sends, results, strict=True):
            if isinstance(result, BaseException):
                tp = _tp(record)
                handled[tp] = min(handled[tp], record.offset)
                if self.report.failure is None:
                    where = f"{record.topic}/{record.partition}@{record.offset}"
                    self.report.failure = _send_failure(where, resend.topic, result)
            else:
                self.report.add_redriven(resend.row, resend.topic)
        return handled

    async def _decide(self, record: ConsumerRecord[bytes, bytes]) -> Resend | Skip | NotSelected:
        o = self.options
        decision = plan(
            record, o.selection, max_redrives=o.max_redrives, target_topic=o.target_topic
        )
        if not isinstance(decision, Resend) or decision.topic in self._partitions:
            return decision
        if decision.topic not in self._looked_up:
            self._looked_up.add(decision.topic)  # created since the start? look once more
            try:
                await self._list_topics()
            except (KafkaUnanswered, KafkaFatalError) as exc:
                self.report.failure = str(exc)
            if decision.topic in self._partitions:
                return decision
        return Skip(decision.row, f"target topic {decision.topic!r} does not exist")

    async def _send(self, resend: Resend, location: str) -> asyncio.Future[object] | None:
        """Queue ``resend`` on the producer (after its turn under ``--rate``); None when
        stopped meanwhile or refused at once (``report.failure``)."""
        producer = self._producer
        assert producer is not None
        if self._bucket is not None and (delay := self._bucket.reserve()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                self._interrupt()
                return None
        letter = resend.stored.letter
        partition = _partition(letter, resend.topic, self._partitions[resend.topic])
        try:
            return await send(
                producer,
                resend.topic,
                resend.value,
                key=resend.key,
                headers=resend.headers,
                partition=partition,
            )
        except (AuthorizationError, PublishError) as exc:
            self.report.failure = _send_failure(location, resend.topic, exc)
            return None


def _burst(rate: float) -> float:
    return max(1.0, rate / 10)  # a tenth of a second's worth may go at once


def _tp(record: ConsumerRecord[bytes, bytes]) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def _partition(letter: DeadLetter, topic: str, partitions: int) -> int | None:
    """Back to its source partition when it goes back to its source topic (so per-key order
    follows the original producer's partitioner); else the key decides."""
    if topic == letter.topic and letter.partition < partitions:
        return letter.partition
    return None


def _send_failure(location: str, topic: str, exc: BaseException) -> str:
    why = exc if isinstance(exc, WorkerError) else send_error(exc, topic)
    return f"sending the dead letter {location} failed: {why}"

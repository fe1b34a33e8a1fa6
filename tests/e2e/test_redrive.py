"""``packflow-worker redrive`` on the real broker: real dead letters from a real worker go back.

Each test makes dead letters the way production does (a ``Poison`` worker rejects some inputs),
then redrives them with :func:`worker.redrive.redrive`, once through the CLI subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import sys
import time
import uuid
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from tests.e2e.conftest import (
    Identity,
    Poison,
    committed,
    consume,
    produce,
    running_worker,
)
from worker.connection_settings import ConnectionSettings
from worker.errors import StartupError
from worker.pipeline import SOURCE_HEADER, source_of
from worker.redrive import REDRIVE_COUNT_HEADER, RedriveOptions, Selection, redrive

pytestmark = pytest.mark.kafka

Records = list[ConsumerRecord[bytes, bytes]]


def record_value(record_id: int, *, poison: bool = False, **extra: Any) -> bytes:
    return orjson.dumps({"id": record_id, "poison": poison, **extra})


async def dead_letters_of(
    bootstrap: str,
    names: dict[str, str],
    worker_settings: Any,
    messages: list[tuple[bytes | None, bytes]],
    letters: int,
    *,
    group_id: str | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    partition: int | None = None,
) -> Records:
    """Produce ``messages`` to the input topic, run a Poison worker until ``letters`` dead
    letters arrived, stop it, and return them."""
    await produce(bootstrap, names["input_topic"], messages, headers=headers, partition=partition)
    settings = worker_settings(**names, **({"group_id": group_id} if group_id else {}))
    async with running_worker(settings, Poison()):
        found = await consume(bootstrap, names["dlq_topic"], letters)
    assert len(found) == letters
    return found


def options(bootstrap: str, dlq_topic: str, **overrides: Any) -> RedriveOptions:
    values: dict[str, Any] = {
        "dlq_topic": dlq_topic,
        "connection": ConnectionSettings(bootstrap_servers=bootstrap),
        "group_id": f"redrive-{uuid.uuid4().hex[:10]}",
    }
    values.update(overrides)
    return RedriveOptions(**values)


def ids(records: Records) -> list[int]:
    return sorted(orjson.loads(r.value)["id"] for r in records)


def original_sources(letters: Records) -> dict[int, tuple[int, int]]:
    """Record id -> (partition, offset) of the input each dead letter stands for."""
    found = {}
    for letter in letters:
        body = orjson.loads(letter.value)
        record_id = orjson.loads(base64.b64decode(body["value"]))["id"]
        found[record_id] = (body["source"]["partition"], body["source"]["offset"])
    return found


async def test_after_a_fix_every_dead_letter_becomes_exactly_one_output(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(2)
    group = f"g-{uuid.uuid4().hex[:10]}"
    poisoned = {2, 5, 9}
    messages = [(f"k{i}".encode(), record_value(i, poison=i in poisoned)) for i in range(12)]
    # All in partition 1, although keys k5 and k9 hash to partition 0: a redrive that let the
    # key choose the partition would show.
    assert DefaultPartitioner()(b"k5", [0, 1], [0, 1]) == 0
    letters = await dead_letters_of(
        kafka_bootstrap,
        names,
        worker_settings,
        messages,
        3,
        group_id=group,
        headers=[("origin", b"test")],
        partition=1,
    )

    report = await redrive(opts := options(kafka_bootstrap, names["dlq_topic"]))
    assert (report.redriven, report.skipped, report.failure) == (3, 0, None)
    assert report.targets == {names["input_topic"]: 3}
    assert report.rows[("ValueError", "execute")].redriven == 3

    fixed = worker_settings(**names, group_id=group)  # same group: only the redriven inputs
    async with running_worker(fixed, Identity()):
        outputs = await consume(kafka_bootstrap, names["output_topic"], 12, settle=0.5)
    assert ids(outputs) == list(range(12)), "a dead letter was lost or duplicated"
    before = original_sources(letters)
    redriven = {orjson.loads(o.value)["id"]: o for o in outputs}
    redriven = {i: o for i, o in redriven.items() if i in poisoned}
    for record_id, output in redriven.items():
        headers = [k for k, _ in output.headers]
        assert headers.count(SOURCE_HEADER) == 1
        assert dict(output.headers)[REDRIVE_COUNT_HEADER] == b"1"
        assert dict(output.headers)["origin"] == b"test"
        topic, partition, offset = source_of(output.headers) or ("", -1, -1)
        old_partition, old_offset = before[record_id]
        assert (topic, partition) == (names["input_topic"], old_partition)  # its own partition
        assert offset > old_offset  # a new input message

    again = await redrive(opts)  # the same group: resumes after the first run
    assert (again.redriven, again.skipped, again.not_selected) == (0, 0, 0)


async def test_a_where_filter_sends_only_the_matching_dead_letters(
    kafka_bootstrap, topics, worker_settings, create_topic
):
    names = await topics(1)
    target = await create_topic(1, prefix="target")
    messages = [
        (b"a", record_value(0, poison=True)),
        (b"b", b'{"id": 1,'),  # InvalidJsonError, step decode
        (b"c", record_value(2)),
        (b"d", record_value(3, poison=True)),
        (b"e", b"[1]"),  # NotARecordError
    ]
    await dead_letters_of(kafka_bootstrap, names, worker_settings, messages, 4)

    selection = Selection.parse(["error.type=ValueError", "error.step=execute"])
    report = await redrive(
        options(kafka_bootstrap, names["dlq_topic"], target_topic=target, selection=selection)
    )
    assert (report.redriven, report.not_selected, report.skipped) == (2, 2, 0)
    assert report.rows[("InvalidJsonError", "decode")].not_selected == 1
    assert report.rows[("NotARecordError", "decode")].not_selected == 1
    sent = await consume(kafka_bootstrap, target, 2, settle=0.3)
    assert [r.key for r in sent] == [b"a", b"d"]
    assert ids(sent) == [0, 3]

    with pytest.raises(StartupError, match="target topic 'no-such-topic' does not exist"):
        await redrive(options(kafka_bootstrap, names["dlq_topic"], target_topic="no-such-topic"))


async def test_a_dry_run_sends_and_commits_nothing_and_a_limit_leaves_the_rest(
    kafka_bootstrap, topics, worker_settings, create_topic
):
    names = await topics(1)
    target = await create_topic(1, prefix="target")
    messages = [(b"k", record_value(i, poison=i % 2 == 0)) for i in range(6)]
    await dead_letters_of(kafka_bootstrap, names, worker_settings, messages, 3)
    opts = options(kafka_bootstrap, names["dlq_topic"], target_topic=target)

    dry = await redrive(dataclasses.replace(opts, dry_run=True))
    assert (dry.dry_run, dry.redriven, dry.failure) == (True, 3, None)
    assert "dry run: nothing sent, nothing committed" in dry.table()
    assert await committed(kafka_bootstrap, opts.group, names["dlq_topic"], 1) == {0: None}

    limited = await redrive(dataclasses.replace(opts, limit=2))  # all of it is still there
    assert (limited.redriven, limited.stopped, limited.exit_code) == (2, "--limit 2 reached", 0)
    assert await committed(kafka_bootstrap, opts.group, names["dlq_topic"], 1) == {0: 2}
    rest = await redrive(opts)
    assert rest.redriven == 1
    sent = await consume(kafka_bootstrap, target, 3, settle=0.3)
    assert ids(sent) == [0, 2, 4]  # three, not six: the dry run sent none
    assert await committed(kafka_bootstrap, opts.group, names["dlq_topic"], 1) == {0: 3}


async def test_a_dead_letter_redriven_max_redrives_times_is_skipped_and_reported(
    kafka_bootstrap, topics, worker_settings, create_topic
):
    names = await topics(1)
    target = await create_topic(1, prefix="target")
    for count, record_id in ((b"3", 0), (b"2", 1), (b"7", 2)):  # as earlier redrives left them
        headers = [(REDRIVE_COUNT_HEADER, count), ("h", b"v")]
        await produce(
            kafka_bootstrap,
            names["input_topic"],
            [(b"k", record_value(record_id, poison=True))],
            headers=headers,
        )
    await dead_letters_of(kafka_bootstrap, names, worker_settings, [], 3)

    report = await redrive(options(kafka_bootstrap, names["dlq_topic"], target_topic=target))
    assert (report.redriven, report.skipped) == (1, 2)
    row = report.rows[("ValueError", "execute")]
    assert row.skipped == {"redriven 3+ times already (--max-redrives)": 2}
    assert [s.location for s in report.skipped_letters] == [
        f"{names['dlq_topic']}/0@0",
        f"{names['dlq_topic']}/0@2",
    ]
    (sent,) = await consume(kafka_bootstrap, target, 1, settle=0.3)
    assert ids([sent]) == [1]
    assert list(sent.headers) == [("h", b"v"), (REDRIVE_COUNT_HEADER, b"3")]


async def test_runs_resume_and_stop_at_the_end_offsets_they_started_with(
    kafka_bootstrap, topics, worker_settings, create_topic
):
    names = await topics(1)
    target = await create_topic(1, prefix="target")
    messages = [(b"k", record_value(i, poison=True)) for i in range(4)]
    letters = await dead_letters_of(kafka_bootstrap, names, worker_settings, messages, 4)
    opts = options(kafka_bootstrap, names["dlq_topic"], target_topic=target, rate=5.0)

    # While the paced run sends, a fifth dead letter arrives: it waits for the next run.
    started = time.monotonic()
    run = asyncio.create_task(redrive(opts))
    watcher = asyncio.create_task(consume(kafka_bootstrap, target, 1))
    await asyncio.wait({run, watcher}, return_when=asyncio.FIRST_COMPLETED)
    late = letters[0]
    await produce(
        kafka_bootstrap, names["dlq_topic"], [(late.key, late.value)], headers=list(late.headers)
    )
    first = await run
    paced = time.monotonic() - started
    await watcher
    assert first.end_offsets == {0: 4}
    assert first.redriven == 4
    assert paced >= 3 / 5  # 4 sends at 5/s: 3 gaps of 0.2 s

    second = await redrive(opts)
    assert (second.redriven, second.end_offsets) == (1, {0: 5})
    third = await redrive(opts)
    assert (third.redriven, third.skipped, third.not_selected) == (0, 0, 0)
    sent = await consume(kafka_bootstrap, target, 5, settle=0.3)
    assert ids(sent) == [0, 0, 1, 2, 3]


async def test_a_failed_send_commits_only_what_the_broker_acknowledged(
    kafka_bootstrap, topics, worker_settings, create_topic
):
    names = await topics(1)
    # The broker refuses a message over the target's max.message.bytes: the third one.
    narrow = await create_topic(1, prefix="narrow", config={"max.message.bytes": "400"})
    wide = await create_topic(1, prefix="wide")
    messages = [
        (b"k", record_value(i, poison=True, pad="x" * (600 if i == 2 else 0))) for i in range(4)
    ]
    await dead_letters_of(kafka_bootstrap, names, worker_settings, messages, 4)
    # Paced, so that no producer batch holds the refused message with an earlier one.
    opts = options(kafka_bootstrap, names["dlq_topic"], target_topic=narrow, rate=5.0)

    failed = await redrive(opts)
    assert failed.exit_code == 1
    assert failed.failure is not None
    assert f"sending the dead letter {names['dlq_topic']}/0@2 failed" in failed.failure
    assert "MessageSizeTooLargeError" in failed.failure
    assert failed.failure.endswith("; committed what the broker acknowledged")
    assert failed.redriven == 2
    assert await committed(kafka_bootstrap, opts.group, names["dlq_topic"], 1) == {0: 2}

    rest = await redrive(dataclasses.replace(opts, target_topic=wide))  # starts with it
    assert (rest.redriven, rest.failure) == (2, None)
    assert ids(await consume(kafka_bootstrap, wide, 2, settle=0.3)) == [2, 3]


async def test_a_stop_request_ends_the_run_after_committing_what_was_sent(
    kafka_bootstrap, topics, worker_settings, create_topic
):
    names = await topics(1)
    target = await create_topic(1, prefix="target")
    messages = [(b"k", record_value(i, poison=True)) for i in range(6)]
    await dead_letters_of(kafka_bootstrap, names, worker_settings, messages, 6)
    opts = options(kafka_bootstrap, names["dlq_topic"], target_topic=target, rate=2.0)

    stop = asyncio.Event()  # what SIGTERM / SIGINT set in the command
    run = asyncio.create_task(redrive(opts, stop=stop))
    await consume(kafka_bootstrap, target, 1)
    stop.set()
    report = await run
    assert (report.interrupted, report.exit_code, report.failure) == (True, 1, None)
    assert 1 <= report.redriven < 6
    position = await committed(kafka_bootstrap, opts.group, names["dlq_topic"], 1)
    assert position == {0: report.redriven}
    rest = await redrive(dataclasses.replace(opts, rate=None))
    assert rest.redriven == 6 - report.redriven
    assert ids(await consume(kafka_bootstrap, target, 6, settle=0.3)) == list(range(6))


async def test_the_cli_reports_omitted_values_and_foreign_messages_and_sends_the_rest(
    kafka_bootstrap, topics, worker_settings, create_topic
):
    # A dead letter over the dead-letter topic's max.message.bytes loses its value.
    names = await topics(1, dlq_config={"max.message.bytes": "3000"})
    target = await create_topic(1, prefix="target")
    messages = [
        (b"big", record_value(0, poison=True, pad="x" * 3000)),
        (b"small", record_value(1, poison=True)),
    ]
    letters = await dead_letters_of(kafka_bootstrap, names, worker_settings, messages, 2)
    assert orjson.loads(letters[0].value)["value_omitted"]
    await produce(kafka_bootstrap, names["dlq_topic"], [(b"x", b"not json"), (b"y", b'{"a": 1}')])

    env = {k: v for k, v in os.environ.items() if not k.startswith("PACKFLOW_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        "redrive",
        "--dlq-topic",
        names["dlq_topic"],
        "--target-topic",
        target,
        "--bootstrap-servers",
        kafka_bootstrap,
        "--group-id",
        f"r-{uuid.uuid4().hex[:8]}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    table = stdout.decode()
    print(table)
    lines = table.splitlines()
    assert lines[-1].split() == ["total", "1", "3", "0"]
    (value_error,) = [line for line in lines if line.startswith("ValueError")]
    assert value_error.split()[:5] == ["ValueError", "execute", "1", "1", "0"]
    assert "value omitted: 1" in value_error
    (foreign,) = [line for line in lines if line.startswith("(not a dead letter)")]
    assert "not JSON: 1" in foreign
    assert "error missing or not an object: 1" in foreign
    (sent,) = await consume(kafka_bootstrap, target, 1, settle=0.3)
    assert (sent.key, ids([sent])) == (b"small", [1])

"""The worker as a process: SIGTERM mid-stream drains, commits and exits 0; nothing is lost."""

from __future__ import annotations

import signal
import uuid

import orjson
import pytest

from tests.e2e._process import BACKEND, WorkerProcess, worker_env
from tests.e2e.conftest import committed, consume, produce, wait_for

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize(("choice", "loop"), [("auto", "uvloop"), ("asyncio", "asyncio")])
async def test_sigterm_mid_stream_exits_0_and_a_restart_leaves_nothing_lost(
    kafka_bootstrap, topics, tmp_path, choice, loop
):
    names = await topics(2)
    (tmp_path / "pipe.py").write_text(BACKEND)
    env = worker_env(kafka_bootstrap, names, "pipe:Backend", max_batch_size="40", event_loop=choice)
    total = 3000
    messages = [(f"k{i % 13}".encode(), orjson.dumps({"id": i})) for i in range(total)]
    await produce(kafka_bootstrap, names["input_topic"], messages)

    first = WorkerProcess(tmp_path, env)
    await first.start()
    await wait_for(lambda: len(first.named("batch_metrics")) >= 3, 60, "a few batches")
    assert await first.stop() == 0, await first.stderr()
    assert not first.bad_lines, first.bad_lines[:3]
    (started,) = first.named("worker_started")
    assert started["event_loop"] == loop
    assert isinstance(started["health_port"], int)
    assert started["health_port"] > 0
    (stopped,) = first.named("worker_stopped")
    assert stopped["clean"] is True
    done_first = sum(e["batch_size"] for e in first.named("batch_metrics"))
    assert 0 < done_first < total, "SIGTERM did not land mid-stream"

    second = WorkerProcess(tmp_path, env)
    await second.start()
    outputs = await consume(kafka_bootstrap, names["output_topic"], total, within=90, settle=1.0)
    assert await second.stop(signal.SIGINT) == 0, await second.stderr()
    sources = [dict(o.headers)["packflow-source"] for o in outputs]
    assert len(sources) == total, "an input was lost or duplicated"
    assert len(set(sources)) == total
    assert sorted(orjson.loads(o.value)["id"] for o in outputs) == list(range(total))
    done_second = sum(e["batch_size"] for e in second.named("batch_metrics"))
    assert done_first + done_second == total


STUCK = """
import time

from packflow import InferenceBackend


class Backend(InferenceBackend):
    def execute(self, inputs):
        print('{"event": "execute_entered"}', flush=True)
        time.sleep(60)
        return inputs
"""


async def test_a_second_signal_stops_at_once_without_committing(kafka_bootstrap, topics, tmp_path):
    names = await topics(1)
    (tmp_path / "stuck.py").write_text(STUCK)
    group = f"g-{uuid.uuid4().hex[:10]}"
    env = worker_env(kafka_bootstrap, names, "stuck:Backend", group, shutdown_timeout_seconds="120")
    await produce(kafka_bootstrap, names["input_topic"], [(None, b'{"id": 1}')])
    proc = WorkerProcess(tmp_path, env)
    await proc.start()
    await wait_for(lambda: proc.named("execute_entered"), 60, "the stuck execute()")
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGTERM)
    await wait_for(lambda: proc.named("worker_stopping"), 10, "the first signal's effect")
    assert await proc.stop(signal.SIGTERM, within=15) == 1
    (stopped,) = proc.named("worker_stopped")
    assert stopped["clean"] is False
    positions = await committed(kafka_bootstrap, group, names["input_topic"], 1)
    assert positions == {0: None}

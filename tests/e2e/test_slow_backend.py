"""A backend slower than the session timeout: no rebalance, no duplicate; probes answer."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from structlog.testing import capture_logs

from tests.e2e.conftest import Slow, consume, get_json, produce, running_worker, wait_for

pytestmark = pytest.mark.kafka

SESSION_TIMEOUT_MS = 6000  # the broker's smallest allowed session timeout


async def test_execute_slower_than_the_session_timeout_causes_no_rebalance_and_no_duplicate(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    backend = Slow()
    backend.sleep_s = SESSION_TIMEOUT_MS / 1000 + 2.5
    settings = worker_settings(
        **names, session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=1000
    )
    messages = [(None, orjson.dumps({"id": i})) for i in range(20)]
    async with running_worker(settings, backend) as worker:
        await produce(kafka_bootstrap, names["input_topic"], messages[:10])
        await asyncio.to_thread(backend.started.wait, 30)
        assert backend.started.is_set()
        # While execute() sleeps in its thread, the loop answers both probes at once.
        health = await asyncio.to_thread(get_json, worker.health_port, "/healthz")
        ready = await asyncio.to_thread(get_json, worker.health_port, "/readyz")
        assert health[0] == 200
        assert ready == (200, ready[1])
        assert ready[1]["reasons"] == []
        assert ready[1]["in_flight_records"] >= 1
        await produce(kafka_bootstrap, names["input_topic"], messages[10:])
        outputs = await consume(kafka_bootstrap, names["output_topic"], 20, settle=1.0)
        await wait_for(lambda: worker.budget.empty, 10, "the last commit")
        assert worker.assignments == 1, "the group rebalanced during the slow call"
    assert sorted(orjson.loads(o.value)["id"] for o in outputs) == list(range(20))
    assert backend.calls >= 2


class NotReady(Slow):
    def ready(self) -> bool:
        return False


async def test_probes_answer_404_for_unknown_paths_and_503_while_the_backend_is_not_ready(
    kafka_bootstrap, topics, worker_settings
):
    names = await topics(1)
    async with running_worker(worker_settings(**names), NotReady()) as worker:
        status, body = await asyncio.to_thread(get_json, worker.health_port, "/nope")
        assert status == 404
        assert "/healthz" in body["error"]
        await wait_for(lambda: worker.assignments >= 1, 20, "an assignment")
        status, body = await asyncio.to_thread(get_json, worker.health_port, "/readyz")
        assert status == 503
        assert body["reasons"] == ["backend not ready"]
        assert body["partitions"] == 1
        status, body = await asyncio.to_thread(get_json, worker.health_port, "/healthz")
        assert status == 200


async def test_readiness_fails_when_fetching_stalls_while_messages_wait(
    kafka_bootstrap, topics, worker_settings, monkeypatch
):
    names = await topics(1)
    settings = worker_settings(**names, readiness_stall_seconds=1.5)
    async with running_worker(settings, Slow()) as worker:
        await wait_for(lambda: worker.assignments >= 1, 20, "an assignment")
        status, _ = await asyncio.to_thread(get_json, worker.health_port, "/readyz")
        assert status == 200

        calls = 0

        async def stalled_getmany(*_args, **_kwargs):  # aio-libs/aiokafka#1037's symptom
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.02)
            return {}

        monkeypatch.setattr(worker._pipeline.consumer, "getmany", stalled_getmany)
        await wait_for(lambda: calls >= 2, 10, "the stalled fetcher to be in use")
        await produce(kafka_bootstrap, names["input_topic"], [(None, b'{"id": 1}')])
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            status, body = await asyncio.to_thread(get_json, worker.health_port, "/readyz")
            if status == 503:
                break
            assert asyncio.get_running_loop().time() < deadline, "readiness never failed"
            await asyncio.sleep(0.2)
        assert any(r.startswith("no fetch progress") for r in body["reasons"])
        monkeypatch.undo()
        await consume(kafka_bootstrap, names["output_topic"], 1)
        await wait_for(lambda: worker.batches >= 1, 20, "the batch after the stall")


async def test_taking_over_a_backlog_after_an_idle_spell_is_not_a_fetch_stall(
    kafka_bootstrap, topics, worker_settings, monkeypatch
):
    names = await topics(2)
    # Lag checks every 2 s while idle; a new assignment's first records take 1.5 s to come.
    settings = worker_settings(**names, readiness_stall_seconds=6, max_batch_size=5)
    slow = Slow()
    slow.sleep_s = 1.0
    slow.always = True
    loop = asyncio.get_running_loop()
    blind_until = 0.0
    with capture_logs() as logs:
        async with running_worker(settings, Slow()) as worker:
            getmany = worker._pipeline.consumer.getmany
            on_assigned = worker._pipeline.handover.assigned_

            async def slow_first_fetch(*args, **kwargs):
                if loop.time() < blind_until:
                    await asyncio.sleep(0.02)
                    return {}
                return await getmany(*args, **kwargs)

            async def assigned(partitions):
                nonlocal blind_until
                await on_assigned(partitions)
                if len(partitions) == 2:  # the takeover
                    blind_until = loop.time() + 1.5

            monkeypatch.setattr(worker._pipeline.consumer, "getmany", slow_first_fetch)
            monkeypatch.setattr(worker._pipeline.handover, "assigned_", assigned)
            async with running_worker(settings, slow) as busy:
                await wait_for(lambda: len(busy.assigned) == 1, 30, "one partition each")
                await wait_for(lambda: len(worker.assigned) == 1, 30, "one partition each")
                (backlog,) = busy.assigned
                messages = [(None, orjson.dumps({"id": i})) for i in range(100)]
                await produce(
                    kafka_bootstrap, names["input_topic"], messages, partition=backlog.partition
                )
                idle_since = loop.time()
                await wait_for(  # the first worker idles for longer than the lag-check interval
                    lambda: loop.time() - idle_since > 4.5, 10, "an idle spell"
                )
            # The busy worker left with most of its backlog: the first one takes it over.
            await wait_for(lambda: len(worker.assigned) == 2, 30, "the takeover")
            outputs = await consume(kafka_bootstrap, names["output_topic"], 100, within=60)
            assert len({o.value for o in outputs}) == 100
    assert blind_until > 0, "the takeover was not seen"
    stalls = [e for e in logs if e["event"] == "fetch_stalled"]
    assert not stalls, stalls

"""A backend slower than the session timeout: no rebalance, no duplicate; probes answer."""

from __future__ import annotations

import asyncio
import urllib.request

import orjson
import pytest

from tests.e2e.conftest import Slow, consume, produce, running_worker, wait_for

pytestmark = pytest.mark.kafka

SESSION_TIMEOUT_MS = 6000  # the broker's smallest allowed session timeout


def _get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


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
        health = await asyncio.to_thread(_get, worker.health_port, "/healthz")
        ready = await asyncio.to_thread(_get, worker.health_port, "/readyz")
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
        status, body = await asyncio.to_thread(_get, worker.health_port, "/nope")
        assert status == 404
        assert "/healthz" in body["error"]
        await wait_for(lambda: worker.assignments >= 1, 20, "an assignment")
        status, body = await asyncio.to_thread(_get, worker.health_port, "/readyz")
        assert status == 503
        assert body["reasons"] == ["backend not ready"]
        assert body["partitions"] == 1
        status, body = await asyncio.to_thread(_get, worker.health_port, "/healthz")
        assert status == 200


async def test_readiness_fails_when_fetching_stalls_while_messages_wait(
    kafka_bootstrap, topics, worker_settings, monkeypatch
):
    names = await topics(1)
    settings = worker_settings(**names, readiness_stall_seconds=1.5)
    async with running_worker(settings, Slow()) as worker:
        await wait_for(lambda: worker.assignments >= 1, 20, "an assignment")
        status, _ = await asyncio.to_thread(_get, worker.health_port, "/readyz")
        assert status == 200

        calls = 0

        async def stalled_getmany(*_args, **_kwargs):  # aio-libs/aiokafka#1037's symptom
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.02)
            return {}

        monkeypatch.setattr(worker._consumer, "getmany", stalled_getmany)
        await wait_for(lambda: calls >= 2, 10, "the stalled fetcher to be in use")
        await produce(kafka_bootstrap, names["input_topic"], [(None, b'{"id": 1}')])
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            status, body = await asyncio.to_thread(_get, worker.health_port, "/readyz")
            if status == 503:
                break
            assert asyncio.get_running_loop().time() < deadline, "readiness never failed"
            await asyncio.sleep(0.2)
        assert any(r.startswith("no fetch progress") for r in body["reasons"])
        monkeypatch.undo()
        await consume(kafka_bootstrap, names["output_topic"], 1)
        await wait_for(lambda: worker.batches >= 1, 20, "the batch after the stall")

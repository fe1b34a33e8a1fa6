"""The health server answers probes with 200/503 and JSON details."""

from __future__ import annotations

import asyncio

import orjson

from worker.health import HealthServer


async def _get(port: int, path: str, method: str = "GET") -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body) if body else {}


async def test_probes_map_to_200_and_503_and_unknown_paths_to_404():
    ready = {"ok": False}

    async def healthz():
        return True, {"worker_id": "w"}

    async def readyz():
        return ready["ok"], {"reasons": [] if ready["ok"] else ["no partitions assigned"]}

    server = HealthServer(healthz=healthz, readyz=readyz, host="127.0.0.1", port=0)
    await server.start()
    try:
        assert await _get(server.port, "/healthz") == (200, {"status": "ok", "worker_id": "w"})
        status, body = await _get(server.port, "/readyz")
        assert status == 503
        assert body["reasons"] == ["no partitions assigned"]
        ready["ok"] = True
        assert (await _get(server.port, "/readyz?x=1"))[0] == 200
        assert (await _get(server.port, "/metrics"))[0] == 404
        assert (await _get(server.port, "/healthz", "POST"))[0] == 405
        assert await _get(server.port, "/healthz", "HEAD") == (200, {})
    finally:
        await server.stop()


async def test_a_slow_probe_does_not_block_another_connection():
    gate = asyncio.Event()

    async def slow():
        await gate.wait()
        return True, {}

    async def fast():
        return True, {}

    server = HealthServer(healthz=fast, readyz=slow, host="127.0.0.1", port=0)
    await server.start()
    try:
        pending = asyncio.create_task(_get(server.port, "/readyz"))
        assert (await _get(server.port, "/healthz"))[0] == 200
        assert not pending.done()
        gate.set()
        assert (await pending)[0] == 200
    finally:
        await server.stop()

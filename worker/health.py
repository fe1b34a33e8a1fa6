"""A tiny asyncio HTTP server for ``/healthz``, ``/readyz`` and ``/metrics``.

Both probes answer from the event loop, so an answer at all shows the loop is alive; the
backend runs in its own threads and never delays them. Each probe is an async callable
returning ``(ok, details)``; the server answers 200 or 503 with ``details`` as JSON.
``/metrics`` answers the text an async callable renders (Prometheus' format).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

__all__ = ["HealthServer", "Probe"]

Probe = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
Render = Callable[[], Awaitable[tuple[str, bytes]]]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_READ_TIMEOUT = 5.0


class HealthServer:
    """Serves ``GET /healthz``, ``GET /readyz`` and, given ``metrics`` (returning a content
    type and a body), ``GET /metrics`` on ``host:port`` (port 0 = any free port)."""

    def __init__(
        self,
        *,
        healthz: Probe,
        readyz: Probe,
        metrics: Render | None = None,
        host: str = "0.0.0.0",
        port: int = 0,
    ):
        self._probes = {"/healthz": healthz, "/readyz": readyz}
        self._metrics = metrics
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (the OS's choice when started with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("health server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start serving."""
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        """Stop accepting connections and close the socket."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, status, body = await asyncio.wait_for(self._respond(reader), _READ_TIMEOUT)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            return
        if isinstance(body, tuple):
            content_type, payload = body
        else:
            content_type, payload = "application/json", orjson.dumps(body)
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        try:
            writer.write(head if method == "HEAD" else head + payload)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _respond(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, int, dict[str, Any] | tuple[str, bytes]]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        parts = request_line.split()
        if len(parts) < 2:
            raise ValueError("malformed request line")
        method, target = parts[0], parts[1].split("?", 1)[0]
        if target == "/metrics" and self._metrics is not None and method in ("GET", "HEAD"):
            return method, 200, await self._metrics()
        probe = self._probes.get(target)
        if probe is None:
            known = "/healthz, /readyz" + (" or /metrics" if self._metrics else "")
            return method, 404, {"error": f"unknown path {target!r}; try {known}"}
        if method not in ("GET", "HEAD"):
            return method, 405, {"error": f"method {method} not allowed"}
        ok, details = await probe()
        return method, (200 if ok else 503), {"status": "ok" if ok else "unavailable", **details}

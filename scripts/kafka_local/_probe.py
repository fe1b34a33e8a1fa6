"""A minimal Kafka protocol client (stdlib only) that asks a broker for its metadata.

It sends ApiVersions v0 to learn which Metadata versions the broker accepts, then one
non-flexible Metadata request (v1..v8) for no topics, and decodes the broker list.
That is all ``scripts/kafka`` needs to know that the broker answers clients. With an
``ssl.SSLContext`` it asks over TLS (the secured broker's mTLS listeners).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from dataclasses import dataclass

_API_METADATA = 3
_API_VERSIONS = 18
_CLIENT_ID = b"packflow-kafka-probe"
_MAX_NON_FLEXIBLE_METADATA = 8


@dataclass(frozen=True)
class BrokerMetadata:
    """What a Metadata response says about the cluster."""

    brokers: tuple[tuple[int, str, int], ...]
    cluster_id: str | None
    controller_id: int


class ProbeError(Exception):
    """The broker did not answer, or answered something this probe cannot use."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._data):
            raise ProbeError("truncated response from broker")
        (value,) = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += size
        return int(value)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        raw = self._data[self._pos : self._pos + length]
        self._pos += length
        return raw.decode("utf-8", "replace")


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, corr, len(_CLIENT_ID)) + _CLIENT_ID
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    response = _recv_exact(sock, size)
    if struct.unpack_from(">i", response)[0] != corr:
        raise ProbeError("response correlation id does not match the request")
    return response[4:]


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ProbeError("broker closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


def _metadata_versions(sock: socket.socket) -> tuple[int, int]:
    reader = _Reader(_request(sock, _API_VERSIONS, 0, 1, b""))
    error = reader.take(">h")
    if error != 0:
        raise ProbeError(f"ApiVersions failed with error code {error}")
    for _ in range(reader.take(">i")):
        key, low, high = reader.take(">h"), reader.take(">h"), reader.take(">h")
        if key == _API_METADATA:
            return low, high
    raise ProbeError("broker does not list the Metadata API")


def _metadata_body(version: int) -> bytes:
    body = struct.pack(">i", 0)  # an empty topic list: no topic metadata, just brokers
    if version >= 4:
        body += struct.pack(">b", 0)  # allow_auto_topic_creation = false
    if version >= 8:
        body += struct.pack(">bb", 0, 0)  # no authorized operations
    return body


def fetch_metadata(
    host: str, port: int, timeout: float = 2.0, *, ssl_context: ssl.SSLContext | None = None
) -> BrokerMetadata:
    """Send one Metadata request to ``host:port`` and return the decoded broker list.

    Raises ``ProbeError`` (or ``OSError`` when nothing listens, ``ssl.SSLError`` when
    the TLS handshake fails) if the broker cannot answer yet. With ``ssl_context`` the
    connection is TLS, its server name ``host``.
    """
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
        if ssl_context is not None:
            sock = stack.enter_context(ssl_context.wrap_socket(sock, server_hostname=host))
        sock.settimeout(timeout)
        low, high = _metadata_versions(sock)
        version = min(high, _MAX_NON_FLEXIBLE_METADATA)
        if version < max(low, 1):
            raise ProbeError(f"broker accepts only Metadata v{low}..v{high}")
        reader = _Reader(_request(sock, _API_METADATA, version, 2, _metadata_body(version)))
        if version >= 3:
            reader.take(">i")  # throttle_time_ms
        brokers = []
        for _ in range(reader.take(">i")):
            node_id = reader.take(">i")
            broker_host = reader.string() or ""
            broker_port = reader.take(">i")
            reader.string()  # rack
            brokers.append((node_id, broker_host, broker_port))
        cluster_id = reader.string() if version >= 2 else None
        controller_id = reader.take(">i")
    if not brokers:
        raise ProbeError("metadata lists no broker yet")
    return BrokerMetadata(tuple(brokers), cluster_id, controller_id)


def check_bootstrap(bootstrap: str, timeout: float = 2.0) -> BrokerMetadata:
    """Probe the first ``host:port`` of a comma-separated bootstrap list."""
    first = bootstrap.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep or not port.isdigit():
        raise ProbeError(f"bootstrap address {first!r} is not host:port")
    return fetch_metadata(host.strip("[]"), int(port), timeout)

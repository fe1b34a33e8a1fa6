"""``KafkaClients``: the one place the worker's Kafka clients are built.

The consumer, the output producer, the admin client that reads topic limits and every
exactly-once transactional producer come from here, so each gets the same connection: security
protocol, TLS context, SASL credentials or the shared OAUTHBEARER token provider, and the
``--kafka-option`` values for its side. Tools that talk to the same cluster (the bench, redrive)
build theirs from the same :class:`~worker.connection_settings.ConnectionSettings`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient

from worker.connection_settings import ConnectionSettings
from worker.errors import StartupError
from worker.limits import MAX_BATCH_BYTES
from worker.oauth import OidcTokenProvider
from worker.settings import WorkerSettings

__all__ = [
    "IDLE_FETCH_WAIT_MS",
    "KafkaClients",
    "connection_options",
    "fetch_wait",
    "producer_options",
]


def connection_options(
    settings: ConnectionSettings, *, on_token_refresh: Callable[[float], None] | None = None
) -> dict[str, Any]:
    """aiokafka keyword arguments that connect a client as ``settings`` say.

    Build them once per process and pass the same dict to every client: the TLS context and
    the token provider in it are meant to be shared. Raises :class:`StartupError` when a
    certificate or key cannot be loaded.
    """
    s = settings
    options: dict[str, Any] = {
        "bootstrap_servers": s.bootstrap_servers,
        "security_protocol": s.security_protocol,
    }
    if s.security_protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = _ssl_context(s)
    if s.sasl_mechanism == "OAUTHBEARER":
        assert s.sasl_oauth_token_endpoint_url
        assert s.sasl_oauth_client_id
        assert s.sasl_oauth_client_secret is not None
        options["sasl_mechanism"] = "OAUTHBEARER"
        options["sasl_oauth_token_provider"] = OidcTokenProvider(
            s.sasl_oauth_token_endpoint_url,
            s.sasl_oauth_client_id,
            s.sasl_oauth_client_secret,
            scope=s.sasl_oauth_scope,
            on_refresh=on_token_refresh,
        )
    elif s.sasl_mechanism is not None:
        assert s.sasl_password is not None
        options["sasl_mechanism"] = s.sasl_mechanism
        options["sasl_plain_username"] = s.sasl_username
        options["sasl_plain_password"] = s.sasl_password.get_secret_value()
    return options


def _ssl_context(s: ConnectionSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(s.ssl_cafile) if s.ssl_cafile else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise StartupError(
            f"cannot load --ssl-cafile {str(s.ssl_cafile)!r}: {_ssl_reason(exc)}"
        ) from None
    context.check_hostname = s.ssl_check_hostname
    if not s.ssl_check_hostname:
        context.verify_mode = ssl.CERT_REQUIRED  # the chain is still checked
    if s.ssl_certfile is not None:
        password = s.ssl_key_password.get_secret_value() if s.ssl_key_password else None
        try:
            context.load_cert_chain(
                str(s.ssl_certfile),
                str(s.ssl_keyfile) if s.ssl_keyfile else None,
                password=password or "",  # "" rather than a prompt for an encrypted key
            )
        except (ssl.SSLError, OSError) as exc:
            files = f"--ssl-certfile {str(s.ssl_certfile)!r}" + (
                f" / --ssl-keyfile {str(s.ssl_keyfile)!r}" if s.ssl_keyfile else ""
            )
            hint = (
                " (wrong --ssl-key-password, or the key does not match the certificate)"
                if isinstance(exc, ssl.SSLError)
                else ""
            )
            raise StartupError(f"cannot load {files}: {_ssl_reason(exc)}{hint}") from None
    return context


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def producer_options(
    settings: ConnectionSettings,
    connection: dict[str, Any],
    *,
    client_id: str,
    linger_ms: int,
    max_batch_bytes: int = MAX_BATCH_BYTES,
) -> dict[str, Any]:
    """A producer's arguments: acks from all in-sync replicas, idempotent, batches of at most
    ``max_batch_bytes`` (and :data:`~worker.limits.MAX_BATCH_BYTES`, ``--max-request-size``),
    the compression and ``--kafka-option producer.*`` of ``settings``."""
    s = settings
    return {
        **connection,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": linger_ms,
        "max_batch_size": min(max_batch_bytes, MAX_BATCH_BYTES, s.max_request_size),
        "max_request_size": s.max_request_size,
        "compression_type": s.compression_type,
        **s.client_options.producer,
    }


#: How long the broker may hold a fetch of an idle topic when batches do not wait to fill
#: (``--max-batch-wait-ms 0``): aiokafka's default.
IDLE_FETCH_WAIT_MS = 500


def fetch_wait(min_bytes: int, batch_wait_ms: int) -> dict[str, int]:
    """The consumer's ``fetch_min_bytes`` and ``fetch_max_wait_ms``.

    The broker holds a fetch until ``min_bytes`` have come or the batch wait is over: fuller
    batches at moderate rates, so each batch's fixed costs are paid less often. With no batch
    wait, the broker answers as soon as anything has come and holds a fetch of an idle topic
    for :data:`IDLE_FETCH_WAIT_MS` (a fetch answered at once, empty, would be sent again at
    once, over and over).
    """
    if batch_wait_ms == 0:
        return {"fetch_min_bytes": 1, "fetch_max_wait_ms": IDLE_FETCH_WAIT_MS}
    return {"fetch_min_bytes": min_bytes, "fetch_max_wait_ms": batch_wait_ms}


class KafkaClients:
    """Builds the worker's Kafka clients, all connected the same way.

    ``on_token_refresh`` (OAUTHBEARER only) is told each new token's lifetime.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        on_token_refresh: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self._connection = connection_options(settings, on_token_refresh=on_token_refresh)
        self._options = settings.client_options
        self._client_id = f"packflow-worker-{settings.worker_id}"

    @property
    def connection(self) -> dict[str, Any]:
        """The connection arguments every client gets (:func:`connection_options`)."""
        return self._connection

    @property
    def token_provider(self) -> OidcTokenProvider | None:
        """The OAUTHBEARER token provider every client shares, if any."""
        provider = self._connection.get("sasl_oauth_token_provider")
        return provider if isinstance(provider, OidcTokenProvider) else None

    def consumer(self, listener: ConsumerRebalanceListener) -> AIOKafkaConsumer:
        """The input consumer: explicit commits only, bounded prefetch, subscribed; a fetch
        waits at the broker for ``--fetch-min-bytes`` up to ``--max-batch-wait-ms``."""
        s = self.settings
        consumer = AIOKafkaConsumer(
            **self._connection,
            client_id=self._client_id,
            group_id=s.group_id,
            group_instance_id=s.group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset=s.auto_offset_reset,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            rebalance_timeout_ms=s.rebalance_timeout_ms,
            fetch_max_bytes=s.fetch_max_bytes,
            max_partition_fetch_bytes=s.max_partition_fetch_bytes,
            **fetch_wait(s.fetch_min_bytes, s.max_batch_wait_ms),
            isolation_level=(
                "read_committed" if s.delivery == "exactly-once" else "read_uncommitted"
            ),
            **self._options.consumer,
        )
        consumer.subscribe([s.input_topic], listener=listener)
        return consumer

    def producer(
        self, *, max_batch_bytes: int = MAX_BATCH_BYTES, transactional_id: str | None = None
    ) -> AIOKafkaProducer:
        """A producer with acks from all in-sync replicas, idempotent, small linger.

        ``max_batch_bytes`` (capped at :data:`MAX_BATCH_BYTES` and ``--max-request-size``)
        is its ``max_batch_size``: pass :attr:`~worker.limits.TopicLimits.batch_bytes` so
        that no batch exceeds a topic's limit. ``transactional_id`` makes it exactly-once.
        """
        options = producer_options(
            self.settings,
            self._connection,
            client_id=self._client_id,
            linger_ms=self.settings.linger_ms,
            max_batch_bytes=max_batch_bytes,
        )
        if transactional_id is not None:
            options["transactional_id"] = transactional_id
        return AIOKafkaProducer(**options)

    def admin(self) -> AIOKafkaAdminClient:
        """An admin client (the worker reads topic configs with it)."""
        return AIOKafkaAdminClient(
            **self._connection, client_id=self._client_id, **self._options.admin
        )

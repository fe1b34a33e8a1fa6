"""Before any client starts: connect and authenticate once, and say plainly what failed.

aiokafka's clients log a failed TLS handshake or SASL authentication and report only "Unable to
bootstrap" (and keep retrying), so such a failure would look like an unreachable broker until the
start-up timeout. :func:`check_connection` opens one connection to each bootstrap address with
the worker's own connection settings: a TLS or authentication failure is a
:class:`~worker.errors.StartupError` at once, naming the address, the mechanism and the user
(never the secret); an address that refuses or does not answer is retried until the deadline.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from worker._backoff import Backoff
from worker.connection_settings import ConnectionSettings
from worker.errors import StartupError
from worker.oauth import OAuthTokenError

__all__ = ["check_connection"]

_AUTH_ERRORS = (
    AuthenticationFailedError,
    SaslAuthenticationFailed,
    IllegalSaslStateError,
    UnsupportedSaslMechanismError,
)
_CONNECT_OPTIONS = (
    "security_protocol",
    "ssl_context",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_oauth_token_provider",
)


async def check_connection(
    settings: ConnectionSettings, connection: dict[str, Any], seconds: float
) -> None:
    """Connect (and authenticate) to a bootstrap address of ``settings`` within ``seconds``.

    ``connection`` is :func:`~worker.clients.connection_options` of ``settings``. Returns at
    the first address that accepts; raises :class:`StartupError` on a TLS or authentication
    failure at once, or when no address answered in time.
    """
    options = {key: connection[key] for key in _CONNECT_OPTIONS if key in connection}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    backoff = Backoff(initial=0.2, maximum=2.0)
    while True:
        last: BaseException | None = None
        for host, port, _family in collect_hosts(settings.bootstrap_servers, randomize=False):
            address = f"{host}:{port}"
            remaining = max(deadline - loop.time(), 0.1)
            try:
                conn = await asyncio.wait_for(
                    create_conn(
                        host,
                        port,
                        client_id="packflow-preflight",
                        request_timeout_ms=int(min(remaining, 30.0) * 1000),
                        **options,
                    ),
                    remaining,
                )
            except ssl.SSLError as exc:
                raise StartupError(_tls_failure(settings, address, exc)) from None
            except OAuthTokenError as exc:
                raise StartupError(f"OAUTHBEARER authentication failed: {exc}") from None
            except _AUTH_ERRORS as exc:
                raise StartupError(_auth_failure(settings, address, exc)) from None
            except KafkaConnectionError as exc:
                if settings.security_protocol == "SSL" and settings.ssl_certfile is None:
                    raise StartupError(_closed_after_tls(address)) from None
                last = exc
                continue
            except (OSError, KafkaError, TimeoutError) as exc:
                last = exc
                continue
            try:
                # aiokafka ignores a broker's refusal of an OAUTHBEARER token: the broker then
                # answers the first request with empty metadata and closes the connection.
                metadata = await asyncio.wait_for(conn.send(MetadataRequest([])), remaining)
                refused = not metadata.brokers or not conn.connected()
            except (KafkaError, TimeoutError) as exc:
                refused, last = True, exc
            finally:
                conn.close()
            if refused and settings.sasl_mechanism == "OAUTHBEARER":
                raise StartupError(_token_refused(settings, address))
            if not refused:
                return
        if loop.time() + backoff.peek() > deadline:
            raise StartupError(_unreachable(settings, seconds, last))
        await asyncio.sleep(backoff.next_delay())


def _tls_failure(settings: ConnectionSettings, address: str, exc: ssl.SSLError) -> str:
    reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
    text = f"TLS handshake with {address} failed: {reason}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        if "hostname" in str(reason).lower() or "ip address" in str(reason).lower():
            return text + (
                " (the broker's certificate does not name this host; connect by a name it "
                "lists, or --ssl-check-hostname false)"
            )
        return text + " (is --ssl-cafile the CA that signed the broker's certificate?)"
    if "certificate required" in str(reason).lower():
        return text + " (the broker requires a client certificate: --ssl-certfile)"
    if "wrong version number" in str(reason).lower():
        return text + " (is this listener TLS? --security-protocol)"
    return text


def _auth_failure(settings: ConnectionSettings, address: str, exc: BaseException) -> str:
    mechanism = settings.sasl_mechanism or "SASL"
    who = f" as {settings.sasl_username!r}" if settings.sasl_username else ""
    if mechanism == "OAUTHBEARER":
        who = f" with a token for client {settings.sasl_oauth_client_id!r}"
    detail = str(exc) or type(exc).__name__
    return f"{mechanism} authentication{who} at {address} failed: {detail}"


def _closed_after_tls(address: str) -> str:
    return (
        f"TLS handshake with {address} failed: the broker closed the connection right after "
        "it, so it requires a client certificate (mTLS): give --ssl-certfile and --ssl-keyfile"
    )


def _token_refused(settings: ConnectionSettings, address: str) -> str:
    return (
        f"OAUTHBEARER authentication with a token for client {settings.sasl_oauth_client_id!r} "
        f"at {address} failed: the broker closed the connection after authentication, so it "
        f"refused the token from {settings.sasl_oauth_token_endpoint_url} (check its issuer, "
        "audience, expiry and signing key against the broker's OAUTHBEARER settings)"
    )


def _unreachable(settings: ConnectionSettings, seconds: float, last: BaseException | None) -> str:
    why = ""
    if last is not None:
        why = f": {type(last).__name__}" + (f": {last}" if str(last) else "")
    hint = ""
    if settings.security_protocol == "PLAINTEXT":
        hint = " (if the listener uses TLS or SASL, set --security-protocol)"
    return (
        f"Kafka could not be reached at bootstrap servers {settings.bootstrap_servers!r} "
        f"within {seconds:g}s{why}{hint}"
    )

"""The secured local broker (``scripts/kafka start --secure``, the ``secure_kafka`` fixture).

Every listener authenticates real aiokafka clients: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN
over SASL_SSL, a client certificate over SSL (mTLS), OAUTHBEARER with tokens from the test
identity provider; wrong credentials and an unknown CA fail; ACLs decide what the worker
may do. The identity provider itself is tested without a broker.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import os
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from kafka_local import KafkaLocalError, LocalKafka

from tests.support.kafka_admin import Acl, AclOperation, worker_acls
from tests.support.oidc import OIDCServer, TokenRequestError, request_token
from tests.support.secure_kafka import SecureKafka

from ._helpers import pid_alive, run_cli

CreateTopic = Callable[..., Awaitable[str]]
WAIT = 30.0


class OIDCTokens(AbstractTokenProvider):
    """A fresh token from the test identity provider for each new connection."""

    def __init__(self, oidc: OIDCServer) -> None:
        self._oidc = oidc
        self.calls = 0

    async def token(self) -> str:
        self.calls += 1
        return await asyncio.to_thread(self._oidc.fetch_token)


class FixedToken(AbstractTokenProvider):
    """Always the same token (a stale or forged one)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token


async def round_trip(options: dict[str, Any], topic: str, group: str, value: bytes) -> list[bytes]:
    """Produce ``value`` with ``options``, then read the topic as a group member and commit."""
    producer = AIOKafkaProducer(enable_idempotence=True, **options)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        records: list[Any] = []
        deadline = time.monotonic() + WAIT
        while not records and time.monotonic() < deadline:
            records.extend((await consumer.getmany(tp, timeout_ms=500)).get(tp, []))
        if records:
            await consumer.commit({tp: records[-1].offset + 1})
    finally:
        await consumer.stop()
    return [record.value for record in records]


def group_name() -> str:
    return f"group-{uuid.uuid4().hex[:12]}"


# -- each listener authenticates ----------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
async def test_worker_produces_and_consumes_over_sasl_ssl(
    secure_kafka: SecureKafka, create_secure_topic: CreateTopic, mechanism: str
) -> None:
    topic, group = await create_secure_topic(), group_name()
    await secure_kafka.grant_worker(topic, group=group)
    options = secure_kafka.client_options("sasl_ssl", mechanism=mechanism)
    assert await round_trip(options, topic, group, mechanism.encode()) == [mechanism.encode()]


@pytest.mark.parametrize("encrypted_key", [True, False], ids=["key-password", "clear-key"])
async def test_client_certificate_authenticates_as_worker_over_mtls(
    secure_kafka: SecureKafka, create_secure_topic: CreateTopic, encrypted_key: bool
) -> None:
    topic, group = await create_secure_topic(), group_name()
    await secure_kafka.grant_worker(topic, group=group)
    settings = secure_kafka.worker_settings("mtls", encrypted_key=encrypted_key)
    assert ("PACKFLOW_SSL_KEY_PASSWORD" in settings) is encrypted_key
    assert "ENCRYPTED PRIVATE KEY" in secure_kafka.client_key_file.read_text()
    context = create_ssl_context(
        cafile=settings["PACKFLOW_SSL_CAFILE"],
        certfile=settings["PACKFLOW_SSL_CERTFILE"],
        keyfile=settings["PACKFLOW_SSL_KEYFILE"],
        password=settings.get("PACKFLOW_SSL_KEY_PASSWORD"),
    )
    options = {
        "bootstrap_servers": settings["PACKFLOW_BOOTSTRAP_SERVERS"],
        "security_protocol": settings["PACKFLOW_SECURITY_PROTOCOL"],
        "ssl_context": context,
    }
    assert await round_trip(options, topic, group, b"mtls") == [b"mtls"]


async def test_oauthbearer_token_from_the_identity_provider_authenticates_as_worker(
    secure_kafka: SecureKafka, create_secure_topic: CreateTopic
) -> None:
    topic, group = await create_secure_topic(), group_name()
    await secure_kafka.grant_worker(topic, group=group)
    tokens = OIDCTokens(secure_kafka.oidc)
    issued_before = secure_kafka.oidc.tokens_issued
    options = secure_kafka.client_options("oauth", token_provider=tokens)
    assert await round_trip(options, topic, group, b"oauth") == [b"oauth"]
    assert tokens.calls >= 1
    assert secure_kafka.oidc.tokens_issued - issued_before == tokens.calls


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
async def test_a_wrong_password_fails_authentication(
    secure_kafka: SecureKafka, mechanism: str
) -> None:
    listener = secure_kafka.security.listener("sasl_ssl")
    with pytest.raises(SaslAuthenticationFailed, match="Authentication failed"):
        await create_conn(
            listener.host,
            listener.port,
            security_protocol="SASL_SSL",
            ssl_context=secure_kafka.ssl_context(),
            sasl_mechanism=mechanism,
            sasl_plain_username="worker",
            sasl_plain_password=secure_kafka.worker_credentials.password + "-wrong",
        )


def _other_ca(directory: Path) -> Path:
    """A self-signed CA the broker's certificate was not issued by."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "some other CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "other-ca.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("listener", ["sasl_ssl", "mtls", "oauth"])
async def test_an_unknown_ca_fails_the_tls_handshake(
    secure_kafka: SecureKafka, tmp_path: Path, listener: str
) -> None:
    chosen = secure_kafka.security.listener(listener)
    context = create_ssl_context(cafile=str(_other_ca(tmp_path)))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await create_conn(chosen.host, chosen.port, security_protocol="SSL", ssl_context=context)


async def test_the_mtls_listener_refuses_a_client_without_a_certificate(
    secure_kafka: SecureKafka,
) -> None:
    chosen = secure_kafka.security.listener("mtls")
    # TLS 1.3: the server checks the client certificate after the client's handshake
    # finished, so the refusal arrives with the first request, as a closed connection.
    with pytest.raises((ssl.SSLError, KafkaConnectionError)):
        await create_conn(
            chosen.host,
            chosen.port,
            security_protocol="SSL",
            ssl_context=secure_kafka.ssl_context(client_cert=False),
        )


async def test_a_refused_oauth_token_shows_in_aiokafka_as_a_closed_connection(
    secure_kafka: SecureKafka,
) -> None:
    # aiokafka 0.14 ignores the broker's OAUTHBEARER error challenge (RFC 7628 3.2.2):
    # create_conn "succeeds" and the broker closes the connection at the first request.
    chosen = secure_kafka.security.listener("oauth")
    forged = secure_kafka.oidc.mint(audience="someone-else")
    conn = await create_conn(
        chosen.host,
        chosen.port,
        security_protocol="SASL_SSL",
        ssl_context=secure_kafka.ssl_context(),
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider=FixedToken(forged),
    )
    try:
        try:
            answer = await conn.send(MetadataRequest([]))
        except KafkaConnectionError:
            answer = None
        assert answer is None or answer.brokers == []
        deadline = time.monotonic() + WAIT
        while conn.connected():
            assert time.monotonic() < deadline, "the broker kept a refused token's connection"
            await asyncio.sleep(0.05)
    finally:
        conn.close()


# -- ACLs ---------------------------------------------------------------------------------


async def _read_one(options: dict[str, Any], topic: str, group: str | None = None) -> list[bytes]:
    """Subscribe to ``topic`` (as a member of ``group``) and return the first records."""
    consumer = AIOKafkaConsumer(
        topic, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest", **options
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values = [record.value for records in batch.values() for record in records]
            if values:
                return values
        return []
    finally:
        await consumer.stop()


async def test_the_worker_reads_a_topic_only_while_an_acl_allows_it(
    secure_kafka: SecureKafka, create_secure_topic: CreateTopic
) -> None:
    await secure_kafka.revoke_all()
    topic = await create_secure_topic()
    admin = AIOKafkaProducer(**secure_kafka.client_options("sasl_ssl", user="admin"))
    await admin.start()
    try:
        await admin.send_and_wait(topic, b"for the worker", partition=0)
    finally:
        await admin.stop()
    worker, group = secure_kafka.client_options("mtls"), group_name()

    # No ACL: the topic is not even described to the worker (start() fails).
    with pytest.raises(TopicAuthorizationFailedError):
        await _read_one(worker, topic, group)

    acls = await secure_kafka.grant_worker(topic, group=group)
    assert await _read_one(worker, topic, group) == [b"for the worker"]

    # Without READ it still sees the topic and joins the group, but the fetch is refused.
    assert await secure_kafka.revoke(Acl.topic(topic, AclOperation.READ)) == 1
    with pytest.raises(TopicAuthorizationFailedError):
        await _read_one(worker, topic, group)
    remaining = await secure_kafka.admin.acls("User:worker")
    assert remaining == set(acls) - {Acl.topic(topic, AclOperation.READ)}
    assert await secure_kafka.revoke_all() == len(remaining)


async def test_grant_worker_is_enough_for_exactly_once(
    secure_kafka: SecureKafka, create_secure_topic: CreateTopic
) -> None:
    source, sink = (
        await create_secure_topic(prefix="source"),
        await create_secure_topic(prefix="sink"),
    )
    group, prefix = group_name(), f"tx-{uuid.uuid4().hex[:8]}-"
    await secure_kafka.grant_worker(source, sink, group=group, transactional_prefix=prefix)
    options = secure_kafka.client_options("sasl_ssl")
    producer = AIOKafkaProducer(transactional_id=f"{prefix}{source}-0", **options)
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(sink, b"out", partition=0)
            await producer.send_offsets_to_transaction({TopicPartition(source, 0): 1}, group)
    finally:
        await producer.stop()
    reader = AIOKafkaConsumer(group_id=group, **options)
    await reader.start()
    try:
        assert await reader.committed(TopicPartition(source, 0)) == 1
    finally:
        await reader.stop()
    assert await _read_one({**options, "isolation_level": "read_committed"}, sink) == [b"out"]


async def test_a_transactional_id_outside_the_granted_prefix_is_refused(
    secure_kafka: SecureKafka, create_secure_topic: CreateTopic
) -> None:
    from aiokafka.errors import TransactionalIdAuthorizationFailed

    topic = await create_secure_topic()
    await secure_kafka.grant_worker(topic, transactional_prefix="granted-")
    producer = AIOKafkaProducer(
        transactional_id=f"other-{uuid.uuid4().hex[:8]}",
        **secure_kafka.client_options("sasl_ssl"),
    )
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await producer.start()
    await producer.stop()


def test_worker_acls_cover_topics_group_transactions_and_cluster() -> None:
    acls = worker_acls("in", "out", group="g", transactional_prefix="tx-")
    described = sorted(str(acl) for acl in acls)
    assert described == sorted(
        [
            *(
                f"ALLOW User:worker {op} TOPIC:{topic}"
                for topic in ("in", "out")
                for op in ("READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS")
            ),
            "ALLOW User:worker READ GROUP:g",
            "ALLOW User:worker DESCRIBE GROUP:g",
            "ALLOW User:worker WRITE TRANSACTIONAL_ID:tx-*",
            "ALLOW User:worker DESCRIBE TRANSACTIONAL_ID:tx-*",
            "ALLOW User:worker IDEMPOTENT_WRITE CLUSTER:kafka-cluster",
            "ALLOW User:worker DESCRIBE CLUSTER:kafka-cluster",
        ]
    )


# -- token expiry (what a worker on OAUTHBEARER has to live with) -------------------------


async def test_the_broker_closes_a_connection_whose_token_expired_and_aiokafka_reconnects(
    secure_kafka: SecureKafka, create_secure_topic: CreateTopic, caplog: pytest.LogCaptureFixture
) -> None:
    topic, group = await create_secure_topic(), group_name()
    await secure_kafka.grant_worker(topic, group=group)
    tokens = OIDCTokens(secure_kafka.oidc)
    options = secure_kafka.client_options("oauth", token_provider=tokens)
    caplog.set_level(logging.WARNING, logger="aiokafka")
    producer = AIOKafkaProducer(**options)
    consumer = AIOKafkaConsumer(
        topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, **options
    )
    sent: list[bytes] = []
    received: list[bytes] = []
    with secure_kafka.oidc.using_lifetime(2.0):
        try:
            await producer.start()
            await consumer.start()
            connected_with = tokens.calls
            deadline = time.monotonic() + WAIT
            # A new token is fetched only for a new connection: run until the clients had
            # to reconnect three times (and the consumer caught up).
            while tokens.calls < connected_with + 3 or len(received) < len(sent):
                assert time.monotonic() < deadline, (
                    f"{tokens.calls} tokens, {len(received)}/{len(sent)}"
                )
                if len(sent) < 200:
                    value = f"m{len(sent)}".encode()
                    await producer.send_and_wait(topic, value, partition=0)
                    sent.append(value)
                batch = await consumer.getmany(timeout_ms=200)
                received += [record.value for records in batch.values() for record in records]
        finally:
            await producer.stop()
            await consumer.stop()
    assert received == sent
    closed = [r.getMessage() for r in caplog.records if "closed" in r.getMessage()]
    assert closed, "the broker never closed a connection whose token expired"
    assert all("KafkaConnectionError" in line or "Connection at" in line for line in closed)


# -- the identity provider alone -----------------------------------------------------------


def _decode(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_the_token_endpoint_signs_tokens_the_jwks_verifies() -> None:
    import urllib.request

    with OIDCServer(token_lifetime=5, client_secret="s3cret") as oidc:
        answer = request_token(oidc.token_url, "worker", "s3cret", scope="kafka")
        assert answer["token_type"] == "Bearer"
        assert answer["expires_in"] == 5
        assert answer["scope"] == "kafka"
        header_part, claims_part, signature = answer["access_token"].split(".")
        header, claims = _decode(header_part), _decode(claims_part)
        assert header == {"alg": "RS256", "typ": "JWT", "kid": oidc.key.kid}
        assert claims["sub"] == "worker"
        assert (claims["iss"], claims["aud"], claims["scope"]) == (
            oidc.issuer,
            "packflow-kafka",
            "kafka",
        )
        assert claims["exp"] - claims["iat"] == 5
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(oidc.jwks_url) as response:
            (jwk,) = json.load(response)["keys"]
        with opener.open(oidc.discovery_url) as response:
            discovery = json.load(response)
        assert discovery["jwks_uri"] == oidc.jwks_url
        assert discovery["token_endpoint"] == oidc.token_url
        n = int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4)), "big")
        e = int.from_bytes(base64.urlsafe_b64decode(jwk["e"] + "=" * (-len(jwk["e"]) % 4)), "big")
        public = rsa.RSAPublicNumbers(e, n).public_key()
        public.verify(
            base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
            f"{header_part}.{claims_part}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        assert oidc.tokens_issued == 1


def test_the_token_endpoint_refuses_bad_clients_and_can_be_switched_off() -> None:
    import urllib.parse
    import urllib.request

    with OIDCServer(client_secret="right") as oidc:
        with pytest.raises(TokenRequestError) as wrong:
            request_token(oidc.token_url, "worker", "wrong")
        assert (wrong.value.status, wrong.value.error) == (401, "invalid_client")
        assert "wrong" not in str(wrong.value)
        assert "right" not in str(wrong.value)
        with pytest.raises(TokenRequestError) as unknown:
            request_token(oidc.token_url, "nobody", "right")
        assert unknown.value.error == "invalid_client"

        # client_secret_post: the credentials in the form instead of HTTP Basic.
        form = {"grant_type": "client_credentials", "client_id": "worker", "client_secret": "right"}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        post = urllib.request.Request(oidc.token_url, data=urllib.parse.urlencode(form).encode())
        with opener.open(post) as response:
            assert json.load(response)["token_type"] == "Bearer"
        form["grant_type"] = "password"
        post = urllib.request.Request(oidc.token_url, data=urllib.parse.urlencode(form).encode())
        with pytest.raises(urllib.error.HTTPError) as grant:
            opener.open(post)
        assert grant.value.code == 400
        assert json.load(grant.value)["error"] == "unsupported_grant_type"

        oidc.refusing = True
        with pytest.raises(TokenRequestError) as refused:
            oidc.fetch_token()
        assert (refused.value.status, refused.value.error) == (503, "temporarily_unavailable")
        oidc.refusing = False
        with oidc.using_lifetime(1.5):
            claims = _decode(oidc.fetch_token().split(".")[1])
        assert claims["exp"] - claims["iat"] == 1
        assert oidc.token_lifetime == 300.0
        assert oidc.tokens_issued == 2


# -- kafka_local's secured mode without a broker --------------------------------------------


def test_a_state_dir_stays_plain_or_secured(tmp_path: Path) -> None:
    secured = tmp_path / "secured"
    (secured / "secure").mkdir(parents=True)
    (secured / "secure" / "security.json").write_text('{"format": 1}')
    with pytest.raises(KafkaLocalError, match="holds a secured broker: start it with --secure"):
        LocalKafka(secured).start()
    with pytest.raises(KafkaLocalError, match=r"security\.json is unreadable or incomplete"):
        LocalKafka(secured, secure=True).start()
    plain = tmp_path / "plain"
    (plain / "data").mkdir(parents=True)
    (plain / "data" / "meta.properties").write_text("")
    with pytest.raises(KafkaLocalError, match="holds a plain broker's data"):
        LocalKafka(plain, secure=True).start()
    with pytest.raises(KafkaLocalError, match="jwks_url is an option of the secured broker"):
        LocalKafka(plain, jwks_url="http://127.0.0.1:1/jwks")
    with pytest.raises(KafkaLocalError, match=r"setting inter\.broker\.listener\.name is managed"):
        LocalKafka(plain, secure=True, settings={"inter.broker.listener.name": "X"})


def test_passwords_stay_out_of_reprs(secure_kafka: SecureKafka) -> None:
    security = secure_kafka.security
    secrets = [security.admin.password, security.worker.password, security.client_key_password]
    shown = repr(security) + repr(secure_kafka.oidc) + repr(secure_kafka)
    assert not [secret for secret in secrets if secret in shown]
    assert secure_kafka.oidc.client_secret not in shown
    assert secure_kafka.broker.log_file.is_file()
    log = secure_kafka.broker.log_file.read_text(errors="replace")
    assert not [secret for secret in secrets if secret in log]
    assert oct(security.directory.stat().st_mode & 0o777) == "0o700"


# -- the CLI ------------------------------------------------------------------------------


def _env_blocks(text: str) -> dict[str, dict[str, str]]:
    """``# name: description`` followed by KEY=VALUE lines, by name."""
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("# ") and ": " in line and line[2:].split(":")[0].count(" ") == 0:
            current = blocks.setdefault(line[2:].split(":")[0], {})
        elif current is not None and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            current[key] = value
    return blocks


async def _admin_connects(settings: dict[str, str]) -> None:
    """Connect and authenticate with a printed admin block (raises if refused)."""
    host, _, port = settings["PACKFLOW_BOOTSTRAP_SERVERS"].rpartition(":")
    conn = await create_conn(
        host,
        int(port),
        security_protocol=settings["PACKFLOW_SECURITY_PROTOCOL"],
        ssl_context=create_ssl_context(cafile=settings["PACKFLOW_SSL_CAFILE"]),
        sasl_mechanism=settings["PACKFLOW_SASL_MECHANISM"],
        sasl_plain_username=settings["PACKFLOW_SASL_USERNAME"],
        sasl_plain_password=settings["PACKFLOW_SASL_PASSWORD"],
    )
    conn.close()


async def test_cli_start_secure_prints_working_settings_then_status_and_stop(
    tmp_path: Path,
) -> None:
    state = tmp_path / "broker"
    started = run_cli("--state-dir", str(state), "start", "--secure")
    try:
        assert started.returncode == 0, started.stderr
        assert "secured Apache Kafka" in started.stderr
        blocks = _env_blocks(started.stdout)
        assert set(blocks) == {
            "worker-scram-sha-512",
            "worker-mtls",
            "worker-oauthbearer",
            "admin-scram-sha-512",
        }
        assert blocks["worker-mtls"]["PACKFLOW_SECURITY_PROTOCOL"] == "SSL"
        assert blocks["worker-oauthbearer"]["PACKFLOW_SASL_MECHANISM"] == "OAUTHBEARER"
        files = sorted(p.name for p in (state / "secure" / "clients").iterdir())
        assert files == [
            "admin-scram-sha-512.env",
            "worker-mtls.env",
            "worker-oauthbearer.env",
            "worker-plain.env",
            "worker-scram-sha-256.env",
            "worker-scram-sha-512.env",
        ]
        pid = int((state / "broker.pid").read_text())

        status = run_cli("--state-dir", str(state), "status")
        assert (status.returncode, status.stdout) == (0, started.stdout)

        # The admin's printed settings work; the worker's file-JWKS token is accepted.
        admin = blocks["admin-scram-sha-512"]
        context = create_ssl_context(cafile=admin["PACKFLOW_SSL_CAFILE"])
        await _admin_connects(admin)
        token = (state / "secure" / "worker.jwt").read_text().strip()
        oauth = blocks["worker-oauthbearer"]
        host, _, port = oauth["PACKFLOW_BOOTSTRAP_SERVERS"].rpartition(":")
        conn = await create_conn(
            host,
            int(port),
            security_protocol="SASL_SSL",
            ssl_context=context,
            sasl_mechanism="OAUTHBEARER",
            sasl_oauth_token_provider=FixedToken(token),
        )
        try:
            metadata = await conn.send(MetadataRequest([]))
            assert [tuple(b[1:3]) for b in metadata.brokers] == [("127.0.0.1", int(port))]
        finally:
            conn.close()
    finally:
        stopped = run_cli("--state-dir", str(state), "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_alive(pid)
    after = run_cli("--state-dir", str(state), "status")
    assert (after.returncode, after.stdout) == (1, "")

    # A restart keeps the CA, the passwords and the SCRAM users of the first start.
    ca = (state / "secure" / "ca.pem").read_bytes()
    restarted = run_cli("--state-dir", str(state), "start", "--secure")
    try:
        assert restarted.returncode == 0, restarted.stderr
        again = _env_blocks(restarted.stdout)
        assert (
            again["admin-scram-sha-512"]["PACKFLOW_SASL_PASSWORD"]
            == admin["PACKFLOW_SASL_PASSWORD"]
        )
        assert (state / "secure" / "ca.pem").read_bytes() == ca
        await _admin_connects(again["admin-scram-sha-512"])
    finally:
        assert run_cli("--state-dir", str(state), "stop").returncode == 0
    plain = run_cli("--state-dir", str(state), "start")
    assert plain.returncode == 1
    assert "holds a secured broker: start it with --secure" in plain.stderr
    assert os.stat(state / "secure" / "security.json").st_mode & 0o077 == 0

"""The worker against the secured broker: every client authenticates (SCRAM, PLAIN, mTLS,
OAUTHBEARER with short-lived tokens), start-up failures are one line, missing ACLs are named.

One secured broker serves the whole test session (the ``secure_kafka`` fixture); each test
uses its own topics and group and takes back the ACLs it granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib
import os
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e._process import BACKEND, WorkerProcess
from tests.e2e.conftest import Poison, wait_for
from tests.support.kafka_admin import Acl, AclOperation
from tests.support.oidc import OIDCServer
from tests.support.secure_kafka import SecureKafka
from worker.app import Worker
from worker.errors import StartupError
from worker.settings import ENV_PREFIX, WorkerSettings

pytestmark = pytest.mark.kafka

CreateTopic = Callable[..., Awaitable[str]]
BENCH = str(Path(__file__).resolve().parents[2] / "bench")


def settings_from(env: dict[str, str], **overrides: Any) -> WorkerSettings:
    """WorkerSettings from ``PACKFLOW_*`` values (as the fixture prints them) and overrides."""
    values: dict[str, Any] = {
        name.removeprefix(ENV_PREFIX).lower(): value for name, value in env.items()
    }
    values.update(
        backend="tests:Identity",
        health_port=0,
        max_batch_wait_ms=20,
        shutdown_timeout_seconds=20,
        worker_id="secure-worker",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        startup_timeout_seconds=10,
    )
    values.update(overrides)
    return WorkerSettings(**values)


@contextlib.asynccontextmanager
async def topics_for(
    secure_kafka: SecureKafka,
    create_secure_topic: CreateTopic,
    *,
    partitions: int = 1,
    metrics: bool = False,
    grant: bool = True,
    transactional: bool = False,
) -> AsyncIterator[dict[str, str]]:
    """Fresh topics and group; with ``grant``, everything a worker needs; revoked after."""
    names = {
        "input_topic": await create_secure_topic(partitions, prefix="in"),
        "output_topic": await create_secure_topic(partitions, prefix="out"),
        "dlq_topic": await create_secure_topic(1, prefix="dlq"),
    }
    if metrics:
        names["metrics_topic"] = await create_secure_topic(1, prefix="metrics")
    names["group_id"] = f"g-{uuid.uuid4().hex[:12]}"
    try:
        if grant:
            await secure_kafka.grant_worker(
                *[v for k, v in names.items() if k.endswith("topic")],
                group=names["group_id"],
                transactional_prefix=f"packflow-{names['group_id']}-" if transactional else None,
            )
        yield names
    finally:
        await secure_kafka.revoke_all()


async def produce_as_admin(secure_kafka: SecureKafka, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(**secure_kafka.client_options("sasl_ssl", user="admin"))
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, v, key=b"k") for v in values])
    finally:
        await producer.stop()


async def read_as_admin(
    secure_kafka: SecureKafka, topic: str, count: int, *, within: float = 30.0
) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        **secure_kafka.client_options("sasl_ssl", user="admin"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + within
        while len(found) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()


async def committed_as_admin(secure_kafka: SecureKafka, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(
        **secure_kafka.client_options("sasl_ssl", user="admin"),
        group_id=group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()


async def run_until(worker: Worker, done: Callable[[], Awaitable[bool]] | None = None) -> int:
    task = asyncio.create_task(worker.run())
    try:
        if done is not None:
            await asyncio.wait_for(worker.started.wait(), 60)
            await done()
    finally:
        worker.request_stop()
    return await asyncio.wait_for(task, 60)


def _values(count: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"id": i}) for i in range(start, start + count)]


@pytest.mark.parametrize(
    ("listener", "mechanism", "delivery"),
    [
        ("sasl_ssl", "SCRAM-SHA-512", "at-least-once"),
        ("sasl_ssl", "SCRAM-SHA-256", "exactly-once"),
        ("sasl_ssl", "PLAIN", "at-least-once"),
        ("mtls", None, "exactly-once"),
    ],
)
async def test_every_client_of_the_worker_authenticates(
    secure_kafka, create_secure_topic, listener, mechanism, delivery
):
    async with topics_for(
        secure_kafka, create_secure_topic, metrics=True, transactional=delivery == "exactly-once"
    ) as names:
        env = secure_kafka.worker_settings(listener, mechanism=mechanism)
        settings = settings_from(env, **names, delivery=delivery)
        await produce_as_admin(secure_kafka, names["input_topic"], [*_values(5), b"oops"])
        worker = Worker(settings, Poison())

        async def delivered() -> None:
            outputs = await read_as_admin(secure_kafka, names["output_topic"], 5)
            assert len(outputs) == 5
            letters = await read_as_admin(secure_kafka, names["dlq_topic"], 1)
            assert len(letters) == 1
            events = await read_as_admin(secure_kafka, names["metrics_topic"], 1)
            assert events
            await wait_for(lambda: worker.batches >= 1, 20, "the batch to settle")

        assert await run_until(worker, delivered) == 0
        assert await committed_as_admin(secure_kafka, names["group_id"], names["input_topic"]) == 6


def oauth_settings(secure_kafka: SecureKafka, names: dict[str, str], **overrides: Any):
    oidc = secure_kafka.oidc
    values = {
        "sasl_oauth_token_endpoint_url": oidc.token_url,
        "sasl_oauth_client_id": oidc.client_id,
        "sasl_oauth_client_secret": oidc.client_secret,
        **names,
        **overrides,
    }
    return settings_from(secure_kafka.worker_settings("oauth"), **values)


async def test_oauthbearer_tokens_are_refreshed_without_interrupting_the_stream(
    secure_kafka, create_secure_topic
):
    async with topics_for(secure_kafka, create_secure_topic, transactional=True) as names:
        settings = oauth_settings(secure_kafka, names, delivery="exactly-once")
        worker = Worker(settings, Poison())
        sent = 0

        async def stream_for_12s() -> None:
            nonlocal sent
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline:  # one message every 100 ms, as a steady stream
                await produce_as_admin(secure_kafka, names["input_topic"], _values(5, sent))
                sent += 5
                await asyncio.sleep(0.1)
            outputs = await read_as_admin(secure_kafka, names["output_topic"], sent, within=30)
            assert sorted(orjson.loads(o.value)["id"] for o in outputs) == list(range(sent))

        with secure_kafka.oidc.using_lifetime(4):
            issued = secure_kafka.oidc.tokens_issued
            assert await run_until(worker, stream_for_12s) == 0
            refreshed = secure_kafka.oidc.tokens_issued - issued
        assert refreshed >= 3  # 4 s tokens over 12 s: fetched again before each expired
        assert worker.failure is None


async def expect_startup_error(settings: WorkerSettings, *fragments: str) -> str:
    worker = Worker(settings, Poison())
    with pytest.raises(StartupError) as caught:
        await asyncio.wait_for(worker.run(), 60)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


async def test_a_wrong_password_is_an_authentication_failure_naming_the_user(
    secure_kafka, create_secure_topic
):
    async with topics_for(secure_kafka, create_secure_topic) as names:
        env = secure_kafka.worker_settings("sasl_ssl") | {"PACKFLOW_SASL_PASSWORD": "not-it-42"}
        message = await expect_startup_error(
            settings_from(env, **names), "SCRAM-SHA-512 authentication as 'worker'", "failed"
        )
        assert "not-it-42" not in message


async def test_an_unknown_ca_and_a_missing_client_certificate_fail_the_tls_handshake(
    secure_kafka, create_secure_topic, tmp_path
):
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(_self_signed_ca())
    async with topics_for(secure_kafka, create_secure_topic) as names:
        env = secure_kafka.worker_settings("sasl_ssl") | {"PACKFLOW_SSL_CAFILE": str(other_ca)}
        await expect_startup_error(
            settings_from(env, **names),
            "TLS handshake with 127.0.0.1:",
            "--ssl-cafile",
        )
        env = secure_kafka.worker_settings("mtls")
        for key in ("PACKFLOW_SSL_CERTFILE", "PACKFLOW_SSL_KEYFILE", "PACKFLOW_SSL_KEY_PASSWORD"):
            env.pop(key)
        await expect_startup_error(settings_from(env, **names), "TLS handshake", "failed")


async def test_a_certificate_for_another_host_is_a_hostname_mismatch(tmp_path):
    ca_pem, server = _server_certificate(tmp_path, "other.example")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server)
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    try:
        settings = settings_from(
            {},
            bootstrap_servers=f"127.0.0.1:{port}",
            security_protocol="SSL",
            ssl_cafile=str(ca_pem),
            input_topic="i",
            output_topic="o",
            dlq_topic="d",
        )
        await expect_startup_error(settings, "TLS handshake", "--ssl-check-hostname false")
    finally:
        listener.close()


async def test_oauthbearer_refused_by_the_token_endpoint_or_by_the_broker(
    secure_kafka, create_secure_topic
):
    async with topics_for(secure_kafka, create_secure_topic) as names:
        wrong = oauth_settings(secure_kafka, names, sasl_oauth_client_secret="wrong-secret-42")
        message = await expect_startup_error(
            wrong, "OAUTHBEARER authentication failed", "HTTP 401 invalid_client", "'worker'"
        )
        assert "wrong-secret-42" not in message
        with OIDCServer(audience=secure_kafka.oidc.audience) as stranger:  # a key the broker
            env = secure_kafka.worker_settings("oauth")  # does not trust
            settings = settings_from(
                env,
                **names,
                sasl_oauth_token_endpoint_url=stranger.token_url,
                sasl_oauth_client_id=stranger.client_id,
                sasl_oauth_client_secret=stranger.client_secret,
            )
            await expect_startup_error(settings, "the broker closed the connection", "token")


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        (
            lambda n: Acl.topic(n["output_topic"], AclOperation.DESCRIBE_CONFIGS),
            "DescribeConfigs on topic",
        ),
        (lambda n: Acl.topic(n["output_topic"], AclOperation.WRITE), "Write on topic"),
        (lambda n: Acl.topic(n["input_topic"], AclOperation.READ), "Read on topic"),
        (lambda n: Acl.group(n["group_id"], AclOperation.READ), "Read on consumer group"),
        (lambda n: Acl.topic(n["dlq_topic"], AclOperation.WRITE), "Write on topic"),
        (lambda n: Acl.topic(n["metrics_topic"], AclOperation.WRITE), "Write on topic"),
    ],
)
async def test_a_missing_acl_stops_start_up_naming_the_operation_and_resource(
    secure_kafka, create_secure_topic, missing, named
):
    async with topics_for(secure_kafka, create_secure_topic, metrics=True) as names:
        acl = missing(names)
        assert await secure_kafka.revoke(acl) == 1
        await produce_as_admin(secure_kafka, names["input_topic"], [*_values(3), b"oops"])
        await expect_startup_error(
            settings_from(secure_kafka.worker_settings("sasl_ssl"), **names),
            "not authorized",
            named,
            acl.resource_name,
        )


async def test_exactly_once_without_its_transactional_ids_is_refused_at_start(
    secure_kafka, create_secure_topic
):
    async with topics_for(secure_kafka, create_secure_topic) as names:
        await produce_as_admin(secure_kafka, names["input_topic"], _values(3))
        settings = settings_from(
            secure_kafka.worker_settings("sasl_ssl"), **names, delivery="exactly-once"
        )
        await expect_startup_error(
            settings,
            "not authorized",
            "Write on transactional id",
            f"packflow-{names['group_id']}-",
        )


async def test_write_revoked_mid_stream_stops_with_exit_1_after_committing_what_was_published(
    secure_kafka, create_secure_topic
):
    async with topics_for(secure_kafka, create_secure_topic) as names:
        settings = settings_from(secure_kafka.worker_settings("sasl_ssl"), **names)
        worker = Worker(settings, Poison())
        task = asyncio.create_task(worker.run())
        try:
            await asyncio.wait_for(worker.started.wait(), 60)
            await produce_as_admin(secure_kafka, names["input_topic"], _values(10))
            first = await read_as_admin(secure_kafka, names["output_topic"], 10)
            assert len(first) == 10
            await wait_for(lambda: worker.batches >= 1 and worker.budget.empty, 20, "settled")
            await secure_kafka.revoke(Acl.topic(names["output_topic"], AclOperation.WRITE))
            await produce_as_admin(secure_kafka, names["input_topic"], _values(10, 10))
            code = await asyncio.wait_for(task, 60)
        finally:
            worker.request_stop()
        assert code == 1
        assert "Write on topic" in str(worker.failure)
        assert (
            await committed_as_admin(secure_kafka, names["group_id"], names["input_topic"]) == 10
        )  # what was published, nothing of what could not be


def _self_signed_ca() -> str:
    ca, _ = _ca()
    return ca.public_bytes(serialization.Encoding.PEM).decode()


def _ca():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "some other CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _server_certificate(tmp_path, host: str):
    ca, ca_key = _ca()
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, server_file = tmp_path / "ca.pem", tmp_path / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_file.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, server_file


async def test_redrive_and_the_bench_clients_authenticate_with_the_same_settings(
    secure_kafka, create_secure_topic, monkeypatch
):
    from worker.connection_settings import ConnectionSettings
    from worker.redrive import RedriveOptions, redrive

    async with topics_for(secure_kafka, create_secure_topic) as names:
        group = f"packflow-redrive-{names['dlq_topic']}"
        await secure_kafka.grant(
            Acl.group(group, AclOperation.READ), Acl.group(group, AclOperation.DESCRIBE)
        )
        env = secure_kafka.worker_settings("sasl_ssl", mechanism="SCRAM-SHA-256")
        settings = settings_from(env, **names)
        await produce_as_admin(secure_kafka, names["input_topic"], [*_values(2), b"oops"])
        worker = Worker(settings, Poison())

        async def dead_lettered() -> None:
            assert len(await read_as_admin(secure_kafka, names["dlq_topic"], 1)) == 1

        assert await run_until(worker, dead_lettered) == 0
        connection = ConnectionSettings(
            **{k.removeprefix("PACKFLOW_").lower(): v for k, v in env.items()}
        )
        report = await redrive(RedriveOptions(names["dlq_topic"], connection=connection))
        assert report.exit_code == 0
        again = await read_as_admin(secure_kafka, names["input_topic"], 4)
        assert again[-1].value == b"oops"  # the worker user republished the original value

        for name, value in env.items():  # the bench reads the same variables
            monkeypatch.setenv(name, value)
        monkeypatch.syspath_prepend(BENCH)
        common = importlib.import_module("_common")
        await common.produce_records(env["PACKFLOW_BOOTSTRAP_SERVERS"], names["input_topic"], 3)
        assert len(await read_as_admin(secure_kafka, names["input_topic"], 7)) == 7


async def test_the_worker_process_takes_asyncios_loop_over_tls(
    secure_kafka, create_secure_topic, tmp_path
):
    async with topics_for(secure_kafka, create_secure_topic) as names:
        (tmp_path / "pipe.py").write_text(BACKEND)
        env = {
            **os.environ,
            **secure_kafka.worker_settings("sasl_ssl", mechanism="SCRAM-SHA-512"),
            **{f"{ENV_PREFIX}{k.upper()}": v for k, v in names.items()},
            f"{ENV_PREFIX}BACKEND": "pipe:Backend",
            f"{ENV_PREFIX}HEALTH_PORT": "0",
        }
        await produce_as_admin(secure_kafka, names["input_topic"], _values(3))
        proc = WorkerProcess(tmp_path, env)
        await proc.start()
        try:
            await wait_for(lambda: proc.named("batch_metrics"), 60, "the first batch")
        finally:
            code = await proc.stop()
        assert code == 0, await proc.stderr()
        (event,) = proc.named("worker_started")
        assert event["event_loop"] == "asyncio"
        assert event["security_protocol"] == "SASL_SSL"

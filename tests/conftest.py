"""Shared pytest fixtures: a real Apache Kafka broker for every test that needs one.

``kafka_bootstrap`` (session scope, ``str``)
    The bootstrap address of a real broker, chosen in this order:

    1. ``$PACKFLOW_TEST_BOOTSTRAP_SERVERS`` when set (it must answer a metadata request);
    2. testcontainers' Kafka when a Docker engine answers (skipped at once without one);
    3. the project's own broker (``scripts/kafka_local``): Apache Kafka from Maven Central
       jars cached in ``.kafka/libs/<version>``, started once per session in a temporary
       state dir and stopped at the end, also after a failure, Ctrl-C (``finally`` +
       ``atexit``) or a killed pytest (the JVM gets SIGTERM when pytest dies).

    When none works, every test that needs Kafka fails (never skips) with the reason and
    the fix. ``PACKFLOW_TEST_KAFKA=local`` skips the Docker probe. Tests that use any
    fixture below get the ``kafka`` marker, so ``pytest -m "not kafka"`` runs the rest.

``create_topic`` (function scope)
    ``await create_topic(partitions=1, *, prefix=None, config=None) -> str`` creates a
    topic named after the test plus a uuid with the admin client, waits (with a deadline)
    until every partition has a leader and returns its name. The broker never
    auto-creates topics: create each one the test uses.

``create_topic_on`` (function scope)
    Same as ``create_topic`` on a broker of your own (e.g. a ``LocalKafka`` a restart
    test starts): ``await create_topic_on(bootstrap, partitions=1, *, prefix=None,
    config=None) -> str``.

``secure_kafka`` (session scope, ``tests.support.secure_kafka.SecureKafka``)
    A secured broker (``scripts/kafka start --secure``: SASL_SSL with SCRAM-SHA-512/256
    and PLAIN, mTLS, OAUTHBEARER, ACLs on) started once per session, only when a test
    asks for it, after a test identity provider (``tests.support.oidc.OIDCServer``)
    whose JWKS its OAUTH listener trusts. It always comes from ``scripts/kafka_local``
    (neither Docker nor ``PACKFLOW_TEST_BOOTSTRAP_SERVERS`` can give a broker with our
    users, certificates and identity provider) and is stopped like the plain one. ACLs
    live as long as the session: a test that needs the worker to lack a permission
    revokes it (``await secure_kafka.revoke_all()``).

Every async test and fixture runs on the loop the worker would take with ``--event-loop
auto`` (``pytest_asyncio_loop_factories``): uvloop, or asyncio's own loop for the tests of
the secured broker (TLS); ``PACKFLOW_TEST_EVENT_LOOP=asyncio`` runs them all on asyncio's
loop. tests/e2e/test_subprocess.py runs a worker process on both.

``create_secure_topic`` (function scope)
    ``await create_secure_topic(partitions=1, *, prefix=None, config=None) -> str``
    creates a topic on the secured broker as admin, named like ``create_topic``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest
import uvloop
from hypothesis import settings

from tests.support import topics

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import kafka_local  # noqa: E402

if TYPE_CHECKING:
    from tests.support.secure_kafka import SecureKafka

# Property tests check rules, not speed: a loaded CI machine must not fail them on timing.
settings.register_profile("packflow", deadline=None)
settings.load_profile("packflow")

BOOTSTRAP_ENV = "PACKFLOW_TEST_BOOTSTRAP_SERVERS"
MODE_ENV = "PACKFLOW_TEST_KAFKA"
STATE_DIR_PREFIX = "packflow-test-kafka-"
_FIX = (
    "Fix: install a JDK 17+ (and Maven for the first run, which downloads the broker jars "
    f"into .kafka/libs), or start a broker yourself (scripts/kafka start) and set {BOOTSTRAP_ENV}"
    " to the address it prints."
)


class CreateTopic(Protocol):
    """The callable the ``create_topic`` fixture returns."""

    def __call__(
        self,
        partitions: int = 1,
        *,
        prefix: str | None = None,
        config: dict[str, str] | None = None,
    ) -> Awaitable[str]: ...


KAFKA_FIXTURES = frozenset(
    {"kafka_bootstrap", "create_topic", "create_topic_on", "secure_kafka", "create_secure_topic"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Kafka fixture with ``kafka``; run the tests that need the
    project's built tools (``deploy_tools``) last, so ``make test`` builds them meanwhile."""
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)
    items.sort(key=lambda item: "deploy_tools" in getattr(item, "fixturenames", ()))


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loop the worker would take (see above): uvloop's, but asyncio's for a test of the
    secured broker (TLS: worker/event_loop.py) or with ``PACKFLOW_TEST_EVENT_LOOP=asyncio``."""
    fixtures = getattr(item, "fixturenames", ())
    tls = "secure_kafka" in fixtures or "create_secure_topic" in fixtures
    if tls or os.environ.get("PACKFLOW_TEST_EVENT_LOOP") == "asyncio":
        return {"asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real Kafka broker shared by the whole test session."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield _check_external(external)
        return
    if os.environ.get(MODE_ENV, "auto") != "local":
        container = _docker_kafka()
        if container is not None:
            try:
                yield container.get_bootstrap_server()
            finally:
                container.stop()
            return
    yield from _local_kafka()


def _check_external(bootstrap: str) -> str:
    deadline = time.monotonic() + 30.0
    while True:
        try:
            kafka_local.check_bootstrap(bootstrap)
            return bootstrap
        except (OSError, kafka_local.ProbeError) as exc:
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"{BOOTSTRAP_ENV}={bootstrap} does not answer a Kafka metadata request "
                    f"({exc or type(exc).__name__}). Start that broker, or unset {BOOTSTRAP_ENV}"
                    " to let the tests start their own.",
                    pytrace=False,
                )
            time.sleep(0.5)


def _docker_kafka() -> Any | None:
    """Start testcontainers' Kafka if a Docker engine answers, else return ``None`` fast."""
    try:
        from docker.errors import DockerException
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        return None
    try:
        container = (
            KafkaContainer()
            .with_kraft()
            .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
            .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
            .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        )
    except DockerException:
        return None  # no Docker engine: the usual case on our machines
    try:
        container.start()
    except Exception as exc:  # Docker answers but cannot run it: use our own broker
        warnings.warn(
            f"testcontainers' Kafka did not start ({exc}); using scripts/kafka_local",
            stacklevel=1,
        )
        with contextlib.suppress(Exception):
            container.stop()
        return None
    return container


def _remove_abandoned_state_dirs(older_than: float = 3600.0) -> None:
    """Delete state dirs of sessions that were killed (no broker runs there any more)."""
    for old in Path(tempfile.gettempdir()).glob(f"{STATE_DIR_PREFIX}*"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime < older_than:
                continue
            if not kafka_local.LocalKafka(old / "broker").is_running():
                shutil.rmtree(old, ignore_errors=True)


def _local_kafka() -> Iterator[str]:
    _remove_abandoned_state_dirs()
    state_dir = Path(tempfile.mkdtemp(prefix=STATE_DIR_PREFIX))
    broker = kafka_local.LocalKafka(state_dir / "broker", tie_to_parent=True)
    try:
        try:
            bootstrap = broker.start(timeout=150.0)
        except kafka_local.KafkaLocalError as exc:
            pytest.fail(f"Kafka is unavailable for the tests: {exc}. {_FIX}", pytrace=False)
        yield bootstrap
    finally:
        with contextlib.suppress(kafka_local.KafkaLocalError):
            if broker.is_running():
                broker.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def topic_name(base: str) -> str:
    """A unique, legal topic name derived from ``base`` (a test name or a prefix)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-.") or "topic"
    return f"{cleaned[:200]}-{uuid.uuid4().hex[:12]}"


async def create_kafka_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    config: dict[str, str] | None = None,
    ready_within: float = topics.TOPIC_READY_TIMEOUT,
) -> None:
    """Create ``name`` and wait until each of its partitions has a leader."""
    await topics.create_topic(
        functools.partial(topics.plain_admin, bootstrap), name, partitions, config, ready_within
    )


@pytest.fixture
def create_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> CreateTopic:
    """Async factory of fresh topics, named after the requesting test (see module doc)."""

    async def create(
        partitions: int = 1, *, prefix: str | None = None, config: dict[str, str] | None = None
    ) -> str:
        name = topic_name(prefix or request.node.name)
        await create_kafka_topic(kafka_bootstrap, name, partitions, config)
        return name

    return create


class CreateTopicOn(Protocol):
    """The callable the ``create_topic_on`` fixture returns."""

    def __call__(
        self,
        bootstrap: str,
        partitions: int = 1,
        *,
        prefix: str | None = None,
        config: dict[str, str] | None = None,
    ) -> Awaitable[str]: ...


@pytest.fixture
def create_topic_on(request: pytest.FixtureRequest) -> CreateTopicOn:
    """Like ``create_topic`` but on the broker whose bootstrap address is passed."""

    async def create(
        bootstrap: str,
        partitions: int = 1,
        *,
        prefix: str | None = None,
        config: dict[str, str] | None = None,
    ) -> str:
        name = topic_name(prefix or request.node.name)
        await create_kafka_topic(bootstrap, name, partitions, config)
        return name

    return create


# -- the secured broker ------------------------------------------------------------------

#: ``connections.max.reauth.ms`` of the secured broker's OAUTH listener. With it set the
#: broker closes a connection at its first request after the token expired (aiokafka
#: cannot re-authenticate, KIP-368), so a worker must reconnect with a fresh token. One
#: hour: the tokens' own ``exp`` decides (the test OIDC server's default lifetime is 5 min).
SECURE_OAUTH_MAX_REAUTH_MS = 3_600_000
_SECURE_FIX = (
    "Fix: install a JDK 17+ and openssl (and Maven for the first run, which downloads the "
    "broker jars into .kafka/libs); try it with: scripts/kafka start --secure"
)


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureKafka]:
    """A secured broker and its identity provider, shared by the session (module doc)."""
    from tests.support.oidc import OIDCServer
    from tests.support.secure_kafka import SecureKafka

    _remove_abandoned_state_dirs()
    state_dir = Path(tempfile.mkdtemp(prefix=STATE_DIR_PREFIX))
    oidc = OIDCServer().start()
    broker = kafka_local.LocalKafka(
        state_dir / "broker",
        tie_to_parent=True,
        secure=True,
        jwks_url=oidc.jwks_url,
        oauth_issuer=oidc.issuer,
        oauth_audience=oidc.audience,
        settings={
            "listener.name.oauth.oauthbearer.connections.max.reauth.ms": str(
                SECURE_OAUTH_MAX_REAUTH_MS
            )
        },
    )
    try:
        try:
            broker.start(timeout=150.0)
        except kafka_local.KafkaLocalError as exc:
            pytest.fail(
                f"the secured Kafka broker is unavailable for the tests: {exc}. {_SECURE_FIX}",
                pytrace=False,
            )
        yield SecureKafka.create(broker, oidc, oauth_max_reauth_ms=SECURE_OAUTH_MAX_REAUTH_MS)
    finally:
        with contextlib.suppress(kafka_local.KafkaLocalError):
            if broker.is_running():
                broker.stop()
        oidc.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def create_secure_topic(secure_kafka: SecureKafka, request: pytest.FixtureRequest) -> CreateTopic:
    """Async factory of fresh topics on the secured broker, created as admin."""

    async def create(
        partitions: int = 1, *, prefix: str | None = None, config: dict[str, str] | None = None
    ) -> str:
        name = topic_name(prefix or request.node.name)
        return await secure_kafka.create_topic(name, partitions, config)

    return create

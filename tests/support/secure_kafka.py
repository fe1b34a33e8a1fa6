"""``SecureKafka``: what the ``secure_kafka`` fixture yields — a secured broker, its users,
certificates, ACL and topic helpers, and the identity provider its OAUTHBEARER listener
trusts.

    async def test_worker_over_scram(secure_kafka: SecureKafka, create_secure_topic) -> None:
        topic = await create_secure_topic()
        await secure_kafka.grant_worker(topic, group="g")
        env = secure_kafka.worker_settings("sasl_ssl", mechanism="SCRAM-SHA-512")
        producer = AIOKafkaProducer(**secure_kafka.client_options("sasl_ssl"))

Listeners are named ``sasl_ssl`` (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN), ``mtls`` (client
certificate) and ``oauth`` (OAUTHBEARER, tokens from ``oidc``). See
``scripts/kafka_local/_secure.py`` for the broker's side.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.helpers import create_ssl_context
from kafka_local import BrokerSecurity, Credentials, LocalKafka

from .kafka_admin import Acl, SecureAdmin
from .oidc import OIDCServer


@dataclass(frozen=True)
class SecureKafka:
    """One running secured broker and everything a test needs to talk to it."""

    broker: LocalKafka
    security: BrokerSecurity
    #: The identity provider whose JWKS the OAUTH listener trusts (issuer, audience and
    #: client id/secret of ``worker``; ``token_lifetime`` or ``using_lifetime(s)``,
    #: ``refusing``, ``tokens_issued``; put them back after a test: the server is shared).
    oidc: OIDCServer
    #: ACLs and topics as ``admin`` (SCRAM-SHA-512 on the SASL_SSL listener).
    admin: SecureAdmin
    #: ``connections.max.reauth.ms`` of the OAUTH listener: the broker closes a
    #: connection whose token expired (or that is older than this) at its next request.
    oauth_max_reauth_ms: int

    @classmethod
    def create(
        cls, broker: LocalKafka, oidc: OIDCServer, *, oauth_max_reauth_ms: int
    ) -> SecureKafka:
        """Wrap a started secured ``broker`` and the ``oidc`` server it trusts."""
        security = broker.security
        if security is None:
            raise RuntimeError(f"{broker.state_dir} holds no secured broker")
        admin = SecureAdmin(lambda: _client_options(security, "sasl_ssl", user="admin"))
        return cls(broker, security, oidc, admin, oauth_max_reauth_ms)

    # -- addresses and credentials -----------------------------------------------------
    def bootstrap(self, listener: str) -> str:
        """``127.0.0.1:<port>`` of ``sasl_ssl``, ``mtls`` or ``oauth``."""
        return self.security.listener(listener).bootstrap

    @property
    def listeners(self) -> dict[str, str]:
        """Every client listener's bootstrap address, by name."""
        return {name: listener.bootstrap for name, listener in self.security.listeners.items()}

    @property
    def ca_file(self) -> Path:
        """The CA of the broker's (and the client's) certificate."""
        return self.security.ca_file

    @property
    def client_cert_file(self) -> Path:
        """The worker's client certificate chain (mTLS), PEM."""
        return self.security.client_cert_file

    @property
    def client_key_file(self) -> Path:
        """The worker's key, PKCS#8 encrypted with ``client_key_password``."""
        return self.security.client_key_file

    @property
    def client_unencrypted_key_file(self) -> Path:
        """The worker's key in clear."""
        return self.security.client_unencrypted_key_file

    @property
    def client_key_password(self) -> str:
        """The password of ``client_key_file``."""
        return self.security.client_key_password

    @property
    def admin_credentials(self) -> Credentials:
        """``admin`` (a super user) and its password: SCRAM-SHA-512/256 and PLAIN."""
        return self.security.admin

    @property
    def worker_credentials(self) -> Credentials:
        """``worker`` and its password: SCRAM-SHA-512/256 and PLAIN."""
        return self.security.worker

    # -- clients -----------------------------------------------------------------------
    def worker_settings(
        self,
        listener: str,
        *,
        mechanism: str | None = None,
        user: str = "worker",
        encrypted_key: bool = True,
    ) -> dict[str, str]:
        """``PACKFLOW_*`` settings for a worker on ``listener`` (see ``BrokerSecurity``).

        For ``oauth`` they name the mechanism only: the worker's token endpoint settings
        come from ``oidc`` (``token_url``, ``client_id``, ``client_secret``).
        """
        return self.security.client_settings(
            listener, mechanism=mechanism, user=user, encrypted_key=encrypted_key
        )

    def ssl_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        """A TLS context that trusts the broker; with the worker's certificate if asked."""
        return _ssl_context(self.security, client_cert=client_cert)

    def client_options(
        self,
        listener: str,
        *,
        mechanism: str | None = None,
        user: str = "worker",
        token_provider: AbstractTokenProvider | None = None,
    ) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client (producer, consumer or admin).

        ``sasl_ssl``: ``user`` with ``mechanism`` (default SCRAM-SHA-512); ``mtls``: the
        worker's certificate; ``oauth``: ``token_provider`` is required.
        """
        return _client_options(
            self.security, listener, mechanism=mechanism, user=user, token_provider=token_provider
        )

    # -- ACLs and topics (as admin) ----------------------------------------------------
    async def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
    ) -> str:
        """Create ``name`` as admin, wait for its leaders, return the name."""
        await self.admin.create_topic(name, partitions, config)
        return name

    async def grant(self, *acls: Acl) -> None:
        """Create ACLs (see ``kafka_admin.Acl``); they apply when this returns."""
        await self.admin.grant(*acls)

    async def revoke(self, *acls: Acl) -> int:
        """Delete exactly these ACLs; return how many the broker removed."""
        return await self.admin.revoke(*acls)

    async def revoke_all(self, principal: str = "User:worker") -> int:
        """Delete every ACL of ``principal`` (ACLs outlive a test: the broker is shared)."""
        return await self.admin.revoke_all(principal)

    async def grant_worker(
        self,
        *topics: str,
        group: str | None = None,
        transactional_prefix: str | None = None,
    ) -> list[Acl]:
        """Grant the worker all it needs on ``topics``, ``group`` and the transactional
        ids starting with ``transactional_prefix``; return the ACLs (to revoke one)."""
        return await self.admin.grant_worker(
            *topics, group=group, transactional_prefix=transactional_prefix
        )


def _ssl_context(security: BrokerSecurity, *, client_cert: bool) -> ssl.SSLContext:
    context: ssl.SSLContext
    if not client_cert:
        context = create_ssl_context(cafile=str(security.ca_file))
        return context
    context = create_ssl_context(
        cafile=str(security.ca_file),
        certfile=str(security.client_cert_file),
        keyfile=str(security.client_key_file),
        password=security.client_key_password,
    )
    return context


def _client_options(
    security: BrokerSecurity,
    listener: str,
    *,
    mechanism: str | None = None,
    user: str = "worker",
    token_provider: AbstractTokenProvider | None = None,
) -> dict[str, Any]:
    chosen = security.listener(listener)
    if chosen.name == "mtls":
        return {
            "bootstrap_servers": chosen.bootstrap,
            "security_protocol": "SSL",
            "ssl_context": _ssl_context(security, client_cert=True),
        }
    options: dict[str, Any] = {
        "bootstrap_servers": chosen.bootstrap,
        "security_protocol": chosen.security_protocol,
        "ssl_context": _ssl_context(security, client_cert=False),
    }
    if chosen.name == "oauth":
        if token_provider is None:
            raise ValueError("the oauth listener needs a token_provider (AbstractTokenProvider)")
        options["sasl_mechanism"] = "OAUTHBEARER"
        options["sasl_oauth_token_provider"] = token_provider
        return options
    settings = security.client_settings(listener, mechanism=mechanism, user=user)
    options["sasl_mechanism"] = settings["PACKFLOW_SASL_MECHANISM"]
    options["sasl_plain_username"] = settings["PACKFLOW_SASL_USERNAME"]
    options["sasl_plain_password"] = settings["PACKFLOW_SASL_PASSWORD"]
    return options

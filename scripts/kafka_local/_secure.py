"""The secured broker: its listeners, users and files (``BrokerSecurity``) and its settings.

``scripts/kafka start --secure`` (``LocalKafka(..., secure=True)``) runs one KRaft node
with these listeners, each on its own free loopback port:

- ``SASL_SSL`` (SASL_SSL): SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN, users ``admin`` and
  ``worker`` (one password each, for all three mechanisms);
- ``MTLS`` (SSL, ``ssl.client.auth=required``): a client certificate whose subject
  ``CN=<name>,OU=packflow-local,O=packflow`` maps to ``User:<name>``;
- ``OAUTH`` (SASL_SSL): OAUTHBEARER, RS256 JWTs checked against a JWKS URL and the
  expected issuer and audience; ``sub`` is the principal;
- ``INTERNAL`` and ``CONTROLLER`` (SSL, client certificates required): the broker talking
  to itself and to its KRaft controller as ``User:broker``.

ACLs are on (``StandardAuthorizer``, ``allow.everyone.if.no.acl.found=false``); the
super users are ``User:admin`` and ``User:broker``, so ``worker`` can do nothing until
ACLs grant it. SCRAM credentials are written into the metadata log when the data
directory is formatted (``kafka-storage format --add-scram``), so they exist before the
first client connects; the PLAIN users live in the listener's JAAS config.

Every file (and the passwords, in ``security.json``, mode 0600) lives in
``<state dir>/secure/``; a restart on the same state dir reuses them.
"""

from __future__ import annotations

import json
import os
import shlex
import ssl
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _pki
from ._errors import KafkaLocalError
from ._ports import LOOPBACK

SASL_SSL = "sasl_ssl"
MTLS = "mtls"
OAUTH = "oauth"
#: The client listeners, by the names ``BrokerSecurity.listeners`` uses.
CLIENT_LISTENERS = (SASL_SSL, MTLS, OAUTH)
#: The order of ports in ``broker.ports`` for a secured broker (the first two match the
#: plain broker's ``<client port> <controller port>``).
PORT_NAMES = (SASL_SSL, "controller", MTLS, OAUTH, "internal")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
ADMIN_USER = "admin"
WORKER_USER = "worker"
BROKER_USER = "broker"
DEFAULT_OAUTH_AUDIENCE = "packflow-kafka"
DEFAULT_OAUTH_ISSUER = "packflow-local-oidc"
#: Lifetime of the token ``scripts/kafka start --secure`` signs when it serves its own
#: file JWKS (there is no token endpoint then).
FILE_TOKEN_LIFETIME = 24 * 3600.0
ALLOWED_URLS_PROPERTY = "org.apache.kafka.sasl.oauthbearer.allowed.urls"
#: Settings a secured broker sets itself; ``--set`` may not change them.
MANAGED_SETTINGS = frozenset(
    {"listener.security.protocol.map", "inter.broker.listener.name", "controller.listener.names"}
)

_PRINCIPAL_RULES = (
    f"RULE:^CN=([A-Za-z0-9._-]+),{_pki.SUBJECT_SUFFIX}$/$1/,"  # our certificates -> User:<CN>
    "DEFAULT"
)
_FILE_FORMAT = 1


@dataclass(frozen=True)
class Credentials:
    """A user name and its password (the password stays out of ``repr``)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Listener:
    """One client listener of the secured broker."""

    #: ``sasl_ssl``, ``mtls`` or ``oauth``.
    name: str
    port: int
    #: ``SASL_SSL`` or ``SSL``, as clients spell ``security_protocol``.
    security_protocol: str
    #: The SASL mechanisms it accepts (empty for the mTLS listener).
    sasl_mechanisms: tuple[str, ...]
    host: str = LOOPBACK

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class OAuthValidation:
    """How the ``OAUTH`` listener checks tokens.

    ``token_file`` is set only when the broker uses its own file JWKS (no ``jwks_url``
    was given): a JWT for ``sub=worker`` signed with that JWKS's key, valid until
    ``token_expires`` (Unix time), so the CLI's OAUTH listener can be tried at once.
    """

    jwks_url: str
    issuer: str
    audience: str
    token_file: Path | None = None
    token_expires: float | None = None


@dataclass(frozen=True)
class BrokerSecurity:
    """Everything a client needs to reach a secured local broker, listener by listener.

    Passwords are attributes (``admin.password``, ``worker.password``,
    ``client_key_password``) but never part of ``repr``.
    """

    #: ``<state dir>/secure``: certificates, keys, JWKS, ``security.json``, ``clients/``.
    directory: Path
    #: ``sasl_ssl``, ``mtls`` and ``oauth`` (see the module doc).
    listeners: Mapping[str, Listener]
    #: The super user (``User:admin``): SCRAM-SHA-512/256 and PLAIN on ``sasl_ssl``.
    admin: Credentials
    #: ``User:worker``: same mechanisms; it may do only what ACLs grant.
    worker: Credentials
    #: The CA that signed the broker and client certificates (PEM).
    ca_file: Path
    #: The worker's client certificate followed by the CA (PEM).
    client_cert_file: Path
    #: The worker's key, PKCS#8 encrypted with ``client_key_password`` (PEM).
    client_key_file: Path
    client_key_password: str = field(repr=False)
    #: The same key unencrypted (PEM, PKCS#8).
    client_unencrypted_key_file: Path
    #: The broker's key, certificate and CA in one PEM file (its own identity,
    #: ``User:broker``, a super user).
    broker_bundle_file: Path
    oauth: OAuthValidation

    @property
    def users(self) -> dict[str, Credentials]:
        """``{"admin": ..., "worker": ...}``."""
        return {self.admin.username: self.admin, self.worker.username: self.worker}

    def listener(self, name: str) -> Listener:
        """The client listener called ``name`` (``sasl_ssl``, ``mtls`` or ``oauth``)."""
        try:
            return self.listeners[name]
        except KeyError:
            known = ", ".join(self.listeners)
            raise KafkaLocalError(f"no listener {name!r}: the listeners are {known}") from None

    def client_settings(
        self,
        listener: str,
        *,
        mechanism: str | None = None,
        user: str = WORKER_USER,
        encrypted_key: bool = True,
    ) -> dict[str, str]:
        """The ``PACKFLOW_*`` settings of a client of ``listener``, as the worker reads them.

        ``sasl_ssl``: ``mechanism`` (default SCRAM-SHA-512) and ``user``'s password;
        ``mtls``: the worker's certificate and key (``encrypted_key=False`` for the
        unencrypted one, without a password); ``oauth``: mechanism OAUTHBEARER (the token
        comes from an identity provider, not from these settings).
        """
        chosen = self.listener(listener)
        settings = {
            "PACKFLOW_BOOTSTRAP_SERVERS": chosen.bootstrap,
            "PACKFLOW_SECURITY_PROTOCOL": chosen.security_protocol,
            "PACKFLOW_SSL_CAFILE": str(self.ca_file),
        }
        if chosen.name == MTLS:
            settings["PACKFLOW_SSL_CERTFILE"] = str(self.client_cert_file)
            if encrypted_key:
                settings["PACKFLOW_SSL_KEYFILE"] = str(self.client_key_file)
                settings["PACKFLOW_SSL_KEY_PASSWORD"] = self.client_key_password
            else:
                settings["PACKFLOW_SSL_KEYFILE"] = str(self.client_unencrypted_key_file)
            return settings
        chosen_mechanism = mechanism or chosen.sasl_mechanisms[0]
        if chosen_mechanism not in chosen.sasl_mechanisms:
            raise KafkaLocalError(
                f"listener {chosen.name} does not accept {chosen_mechanism}: it accepts "
                + ", ".join(chosen.sasl_mechanisms)
            )
        settings["PACKFLOW_SASL_MECHANISM"] = chosen_mechanism
        if chosen_mechanism != "OAUTHBEARER":
            credentials = self.users.get(user)
            if credentials is None:
                raise KafkaLocalError(f"no user {user!r}: the users are {', '.join(self.users)}")
            settings["PACKFLOW_SASL_USERNAME"] = credentials.username
            settings["PACKFLOW_SASL_PASSWORD"] = credentials.password
        return settings

    def client_profiles(self) -> list[tuple[str, str, dict[str, str]]]:
        """``(name, description, settings)`` for each ready-made client of this broker."""
        sasl = self.listener(SASL_SSL)
        oauth = self.listener(OAUTH)
        oauth_note = (
            f"OAUTHBEARER on {oauth.bootstrap}: RS256 JWTs checked against "
            f"{self.oauth.jwks_url} (iss {self.oauth.issuer}, aud {self.oauth.audience}); "
            "the principal is User:<sub>"
        )
        if self.oauth.token_file is not None:
            oauth_note += f"; a token for sub=worker: {self.oauth.token_file}"
        profiles = [
            (
                f"worker-{mechanism.lower()}",
                f"worker on the SASL_SSL listener {sasl.bootstrap} with {mechanism}",
                self.client_settings(SASL_SSL, mechanism=mechanism),
            )
            for mechanism in SASL_MECHANISMS
        ]
        profiles += [
            (
                "worker-mtls",
                f"worker by client certificate (mTLS) on the SSL listener "
                f"{self.listener(MTLS).bootstrap}",
                self.client_settings(MTLS),
            ),
            ("worker-oauthbearer", oauth_note, self.client_settings(OAUTH)),
            (
                "admin-scram-sha-512",
                f"admin (super user) on the SASL_SSL listener {sasl.bootstrap}",
                self.client_settings(SASL_SSL, user=ADMIN_USER),
            ),
        ]
        return profiles

    def describe(self) -> str:
        """What ``scripts/kafka start --secure`` prints: one env block per listener."""
        shown = {"worker-scram-sha-512", "worker-mtls", "worker-oauthbearer", "admin-scram-sha-512"}
        clients = self.directory / "clients"
        lines = [
            "# Secured local Kafka: client settings as the worker reads them. Each block is",
            f"# also a file in {clients}/ (load one with: set -a; . FILE; set +a),",
            "# with worker-scram-sha-256.env and worker-plain.env for the other mechanisms.",
        ]
        for name, description, settings in self.client_profiles():
            if name not in shown:
                continue
            lines += ["", f"# {name}: {description}"]
            lines += [f"{key}={shlex.quote(value)}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    def write_client_files(self) -> None:
        """Write ``clients/<profile>.env`` for every profile (mode 0600: passwords)."""
        clients = self.directory / "clients"
        clients.mkdir(mode=0o700, exist_ok=True)
        for name, description, settings in self.client_profiles():
            text = f"# {description}\n" + "".join(
                f"{key}={shlex.quote(value)}\n" for key, value in settings.items()
            )
            _write_private(clients / f"{name}.env", text)

    def probe_context(self) -> ssl.SSLContext:
        """A TLS context with the broker's own identity, for readiness probes."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.broker_bundle_file))
        return context


# -- provisioning ------------------------------------------------------------------------


def security_file(directory: Path) -> Path:
    """Where a secured broker keeps its passwords and settings."""
    return directory / "security.json"


def provision(
    directory: Path,
    ports: Mapping[str, int],
    *,
    jwks_url: str | None,
    issuer: str | None,
    audience: str | None,
) -> BrokerSecurity:
    """Make (first start) or reuse (restart) the files and passwords in ``directory``.

    With ``jwks_url=None`` the broker checks tokens against its own file JWKS, and a
    fresh worker token is signed for the CLI at each start.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    saved_file = security_file(directory)
    saved = _read_json(saved_file)
    secrets = saved.get("secrets", {}) if saved.get("format") == _FILE_FORMAT else {}
    if saved_file.exists() and not {"admin", "worker", "client_key"} <= set(secrets):
        # New passwords would not match the SCRAM users already in the metadata log.
        raise KafkaLocalError(
            f"{saved_file} is unreadable or incomplete: use another state dir "
            "(this one's users and certificates cannot be recovered)"
        )
    admin_password = secrets.get("admin") or _pki.new_password()
    worker_password = secrets.get("worker") or _pki.new_password()
    key_password = secrets.get("client_key") or _pki.new_password()
    ca_file = directory / "ca.pem"
    if not ca_file.is_file() or not (directory / "worker-key.pem").is_file():
        _pki.make_ca(directory)
        _pki.issue_certificate(directory, ca_file, BROKER_USER, BROKER_USER, server=True)
        _pki.issue_certificate(
            directory, ca_file, WORKER_USER, WORKER_USER, server=False, key_password=key_password
        )
    oauth = _oauth_validation(directory, jwks_url, issuer, audience)
    security = BrokerSecurity(
        directory=directory,
        listeners={
            SASL_SSL: Listener(SASL_SSL, ports[SASL_SSL], "SASL_SSL", SASL_MECHANISMS),
            MTLS: Listener(MTLS, ports[MTLS], "SSL", ()),
            OAUTH: Listener(OAUTH, ports[OAUTH], "SASL_SSL", ("OAUTHBEARER",)),
        },
        admin=Credentials(ADMIN_USER, admin_password),
        worker=Credentials(WORKER_USER, worker_password),
        ca_file=ca_file,
        client_cert_file=directory / f"{WORKER_USER}.pem",
        client_key_file=directory / f"{WORKER_USER}-key.pem",
        client_key_password=key_password,
        client_unencrypted_key_file=directory / f"{WORKER_USER}-key.unencrypted.pem",
        broker_bundle_file=directory / f"{BROKER_USER}-bundle.pem",
        oauth=oauth,
    )
    save(security, ports)
    security.write_client_files()
    return security


def _oauth_validation(
    directory: Path, jwks_url: str | None, issuer: str | None, audience: str | None
) -> OAuthValidation:
    chosen_issuer = issuer or DEFAULT_OAUTH_ISSUER
    chosen_audience = audience or DEFAULT_OAUTH_AUDIENCE
    if jwks_url is not None:
        return OAuthValidation(jwks_url, chosen_issuer, chosen_audience)
    jwks, signing_key = directory / "jwks.json", directory / "jwt-signing-key.pem"
    if jwks.is_file() and signing_key.is_file():
        kid = json.loads(jwks.read_text())["keys"][0]["kid"]
    else:
        jwks, signing_key, kid = _pki.make_jwks(directory)
    now = time.time()
    token = _pki.sign_jwt(
        signing_key,
        kid,
        subject=WORKER_USER,
        issuer=chosen_issuer,
        audience=chosen_audience,
        lifetime=FILE_TOKEN_LIFETIME,
        now=now,
    )
    token_file = directory / f"{WORKER_USER}.jwt"
    _write_private(token_file, token + "\n")
    return OAuthValidation(
        jwks.as_uri(),
        chosen_issuer,
        chosen_audience,
        token_file=token_file,
        token_expires=float(int(now) + int(FILE_TOKEN_LIFETIME)),
    )


def save(security: BrokerSecurity, ports: Mapping[str, int]) -> None:
    """Write ``security.json`` (mode 0600) so ``status`` can print the settings later."""
    document = {
        "format": _FILE_FORMAT,
        "secrets": {
            "admin": security.admin.password,
            "worker": security.worker.password,
            "client_key": security.client_key_password,
        },
        "ports": dict(ports),
        "oauth": {
            "jwks_url": security.oauth.jwks_url,
            "issuer": security.oauth.issuer,
            "audience": security.oauth.audience,
            "token_file": str(security.oauth.token_file) if security.oauth.token_file else None,
            "token_expires": security.oauth.token_expires,
        },
    }
    _write_private(security_file(security.directory), json.dumps(document, indent=2) + "\n")


def load(directory: Path) -> BrokerSecurity | None:
    """The ``BrokerSecurity`` a secured start saved in ``directory``, or ``None``."""
    saved = _read_json(security_file(directory))
    if saved.get("format") != _FILE_FORMAT:
        return None
    try:
        secrets, ports, oauth = saved["secrets"], saved["ports"], saved["oauth"]
        return BrokerSecurity(
            directory=directory,
            listeners={
                SASL_SSL: Listener(SASL_SSL, int(ports[SASL_SSL]), "SASL_SSL", SASL_MECHANISMS),
                MTLS: Listener(MTLS, int(ports[MTLS]), "SSL", ()),
                OAUTH: Listener(OAUTH, int(ports[OAUTH]), "SASL_SSL", ("OAUTHBEARER",)),
            },
            admin=Credentials(ADMIN_USER, secrets["admin"]),
            worker=Credentials(WORKER_USER, secrets["worker"]),
            ca_file=directory / "ca.pem",
            client_cert_file=directory / f"{WORKER_USER}.pem",
            client_key_file=directory / f"{WORKER_USER}-key.pem",
            client_key_password=secrets["client_key"],
            client_unencrypted_key_file=directory / f"{WORKER_USER}-key.unencrypted.pem",
            broker_bundle_file=directory / f"{BROKER_USER}-bundle.pem",
            oauth=OAuthValidation(
                oauth["jwks_url"],
                oauth["issuer"],
                oauth["audience"],
                Path(oauth["token_file"]) if oauth.get("token_file") else None,
                oauth.get("token_expires"),
            ),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- broker settings ---------------------------------------------------------------------


def broker_settings(security: BrokerSecurity, ports: Mapping[str, int]) -> dict[str, str]:
    """The ``server.properties`` entries that make the broker secured (see module doc)."""
    names = {SASL_SSL: "SASL_SSL", MTLS: "MTLS", OAUTH: "OAUTH", "internal": "INTERNAL"}
    advertised = ",".join(f"{names[n]}://{LOOPBACK}:{ports[n]}" for n in names)
    controller = f"CONTROLLER://{LOOPBACK}:{ports['controller']}"
    plain_users = " ".join(
        f'user_{c.username}="{c.password}"' for c in (security.admin, security.worker)
    )
    scram_module = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    oauth_module = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
    settings = {
        "listeners": f"{advertised},{controller}",
        "advertised.listeners": advertised,
        "listener.security.protocol.map": (
            "SASL_SSL:SASL_SSL,MTLS:SSL,OAUTH:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
        ),
        "inter.broker.listener.name": "INTERNAL",
        "controller.listener.names": "CONTROLLER",
        # TLS: one broker identity for every listener, PEM files, our CA only.
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(security.broker_bundle_file),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(security.ca_file),
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.principal.mapping.rules": _PRINCIPAL_RULES,
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.internal.ssl.client.auth": "required",
        "listener.name.controller.ssl.client.auth": "required",
        # SASL_SSL: SCRAM (users in the metadata log) and PLAIN (users in the JAAS config).
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram_module,
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram_module,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        ),
        # OAUTHBEARER: JWTs validated against the JWKS; sub is the principal.
        "listener.name.oauth.sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.oauth.oauthbearer.sasl.jaas.config": oauth_module,
        "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class": (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
        ),
        "sasl.oauthbearer.jwks.endpoint.url": security.oauth.jwks_url,
        "sasl.oauthbearer.expected.issuer": security.oauth.issuer,
        "sasl.oauthbearer.expected.audience": security.oauth.audience,
        "sasl.oauthbearer.sub.claim.name": "sub",
        # The identity provider and the broker share this machine's clock: an expired
        # token is refused at once, not 30 s later (Kafka's default skew).
        "sasl.oauthbearer.clock.skew.seconds": "0",
        # ACLs on: only the super users may do anything no ACL allows.
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN_USER};User:{BROKER_USER}",
        "allow.everyone.if.no.acl.found": "false",
    }
    return settings


def scram_format_arguments(security: BrokerSecurity) -> list[str]:
    """``kafka-storage format`` arguments that create the SCRAM users."""
    arguments = []
    for credentials in (security.admin, security.worker):
        for mechanism in SCRAM_MECHANISMS:
            arguments += [
                "--add-scram",
                f"{mechanism}=[name={credentials.username},password={credentials.password}]",
            ]
    return arguments

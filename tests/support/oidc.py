"""A small OAuth 2.0 / OIDC identity provider for tests, on 127.0.0.1.

``OIDCServer`` runs the standard library's ``ThreadingHTTPServer`` in a daemon thread and
serves:

- ``POST /token``: the client-credentials grant (RFC 6749 4.4). The client authenticates
  with HTTP Basic (RFC 6749 2.3.1, form-encoded id and secret) or with ``client_id`` and
  ``client_secret`` form fields; ``scope`` is optional. The answer is
  ``{"access_token", "token_type": "Bearer", "expires_in"[, "scope"]}``; a wrong secret or
  an unknown client gets 401 ``invalid_client``, another grant 400
  ``unsupported_grant_type``, and while ``refusing`` is on every request gets 503
  ``temporarily_unavailable``.
- ``GET /jwks``: the JWKS with the RSA key that signs the tokens (RS256, ``kid`` = the
  key's RFC 7638 thumbprint).
- ``GET /.well-known/openid-configuration``: issuer, token endpoint and JWKS URI.

Tokens carry ``sub`` (the client's subject; ``worker`` by default), ``iss`` (the server's
base URL), ``aud``, ``iat``, ``exp`` (``iat`` + the server's ``token_lifetime``, in whole
seconds) and ``scope`` when one was asked for. ``tokens_issued`` counts the tokens the
token endpoint handed out. Secrets never appear in its answers or logs (it logs nothing).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

LOOPBACK = "127.0.0.1"
DEFAULT_AUDIENCE = "packflow-kafka"
DEFAULT_CLIENT_ID = "worker"
DEFAULT_TOKEN_LIFETIME = 300.0
_MAX_FORM_BYTES = 64 * 1024


def b64url(data: bytes) -> str:
    """Base64url without padding (JOSE's encoding)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class OAuthClient:
    """A registered client: its secret and the ``sub`` of the tokens it gets."""

    client_id: str
    client_secret: str = field(repr=False)
    subject: str


class TokenRequestError(Exception):
    """The token endpoint refused a request: ``status`` and OAuth ``error`` code."""

    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(f"token endpoint answered {status} {error}: {description}".rstrip(": "))
        self.status = status
        self.error = error
        self.description = description


class SigningKey:
    """An RSA key that signs RS256 JWTs, and its public JWK."""

    def __init__(self, bits: int = 2048) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        numbers = self._key.public_key().public_numbers()
        n = b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
        e = b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))
        thumbprint = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
        self.kid = b64url(hashlib.sha256(thumbprint.encode()).digest())
        self.jwk: dict[str, str] = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": n,
            "e": e,
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """The compact JWS (a JWT) of ``claims``, signed RS256 with this key's ``kid``."""
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


class OIDCServer:
    """A client-credentials token endpoint and a JWKS on a free 127.0.0.1 port.

    ``start()`` (or ``with``) binds and serves in a thread; ``stop()`` shuts it down.
    ``token_lifetime`` (seconds), ``refusing`` and the registered clients can change
    while it runs; every change applies to the next request.
    """

    def __init__(
        self,
        *,
        audience: str = DEFAULT_AUDIENCE,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str | None = None,
        subject: str = "worker",
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
    ) -> None:
        self.audience = audience
        self.key = SigningKey()
        self._lock = threading.Lock()
        self._clients: dict[str, OAuthClient] = {}
        self._token_lifetime = float(token_lifetime)
        self._tokens_issued = 0
        self._refusing = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_client(client_id, client_secret or secrets.token_hex(16), subject=subject)
        self.client_id = client_id

    # -- configuration -----------------------------------------------------------------
    def add_client(self, client_id: str, client_secret: str, *, subject: str) -> OAuthClient:
        """Register (or replace) a client whose tokens carry ``sub=subject``."""
        client = OAuthClient(client_id, client_secret, subject)
        with self._lock:
            self._clients[client_id] = client
        return client

    @property
    def client_secret(self) -> str:
        """The secret of the default client (``client_id``)."""
        with self._lock:
            return self._clients[self.client_id].client_secret

    @property
    def token_lifetime(self) -> float:
        """Seconds from ``iat`` to ``exp`` of the next tokens (whole seconds are used)."""
        with self._lock:
            return self._token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"token lifetime must be > 0 s, got {seconds}")
        with self._lock:
            self._token_lifetime = float(seconds)

    @contextlib.contextmanager
    def using_lifetime(self, seconds: float) -> Iterator[None]:
        """Issue tokens living ``seconds`` inside the ``with`` block, then restore."""
        before = self.token_lifetime
        self.token_lifetime = seconds
        try:
            yield
        finally:
            self.token_lifetime = before

    @property
    def refusing(self) -> bool:
        """While true, the token endpoint answers 503 ``temporarily_unavailable``."""
        with self._lock:
            return self._refusing

    @refusing.setter
    def refusing(self, value: bool) -> None:
        with self._lock:
            self._refusing = bool(value)

    @property
    def tokens_issued(self) -> int:
        """How many tokens the token endpoint has handed out so far."""
        with self._lock:
            return self._tokens_issued

    # -- addresses ---------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, also the tokens' issuer."""
        if self._server is None:
            raise RuntimeError("the OIDC server is not started")
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        """The ``iss`` of every token (the base URL)."""
        return self.base_url

    @property
    def token_url(self) -> str:
        """The client-credentials token endpoint."""
        return f"{self.base_url}/token"

    @property
    def jwks_url(self) -> str:
        """The JWKS endpoint (what the broker's ``sasl.oauthbearer.jwks.endpoint.url`` is)."""
        return f"{self.base_url}/jwks"

    @property
    def discovery_url(self) -> str:
        """``/.well-known/openid-configuration``."""
        return f"{self.base_url}/.well-known/openid-configuration"

    # -- tokens ------------------------------------------------------------------------
    def mint(
        self,
        *,
        subject: str = "worker",
        lifetime: float | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        scope: str | None = None,
        now: float | None = None,
    ) -> str:
        """Sign a token directly (not counted in ``tokens_issued``), e.g. a bad one."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "sub": subject,
            "iss": issuer if issuer is not None else self.issuer,
            "aud": audience if audience is not None else self.audience,
            "iat": issued,
            "exp": issued + int(self.token_lifetime if lifetime is None else lifetime),
        }
        if scope:
            claims["scope"] = scope
        return self.key.sign(claims)

    def fetch_token(
        self, *, client_id: str | None = None, client_secret: str | None = None, scope: str = ""
    ) -> str:
        """Ask the token endpoint over HTTP, as a client would; return the access token."""
        chosen = client_id or self.client_id
        with self._lock:
            known = self._clients.get(chosen)
        secret = (
            client_secret if client_secret is not None else (known.client_secret if known else "")
        )
        return str(request_token(self.token_url, chosen, secret, scope=scope)["access_token"])

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> OIDCServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="oidc", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> OIDCServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "stopped"
        return f"<OIDCServer {where} client_id={self.client_id!r}>"

    # -- the token endpoint (called from the server's threads) -------------------------
    def _grant(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """Answer a token request; raise ``TokenRequestError`` to refuse it."""
        with self._lock:
            refusing = self._refusing
            lifetime = self._token_lifetime
        if refusing:
            raise TokenRequestError(503, "temporarily_unavailable", "the server refuses tokens")
        client_id: str | None
        secret: str | None
        if basic is not None:
            client_id, secret = basic
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        with self._lock:
            client = self._clients.get(client_id or "")
        if (
            client is None
            or secret is None
            or not secrets.compare_digest(client.client_secret.encode(), secret.encode())
        ):
            raise TokenRequestError(401, "invalid_client", "client authentication failed")
        if form.get("grant_type") != "client_credentials":
            raise TokenRequestError(
                400, "unsupported_grant_type", "only client_credentials is supported"
            )
        scope = form.get("scope", "").strip()
        token = self.mint(subject=client.subject, lifetime=lifetime, scope=scope or None)
        with self._lock:
            self._tokens_issued += 1
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(lifetime),
        }
        if scope:
            answer["scope"] = scope
        return answer

    def _discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_url,
            "jwks_uri": self.jwks_url,
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }


def _handler_for(provider: OIDCServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "packflow-test-oidc"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Log nothing (the default writes every request to stderr)."""

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/jwks":
                self._json(200, {"keys": [provider.key.jwk]})
            elif path == "/.well-known/openid-configuration":
                self._json(200, provider._discovery())
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if urllib.parse.urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_FORM_BYTES:
                self._json(413, {"error": "invalid_request"})
                return
            body = self.rfile.read(length).decode("utf-8", "replace")
            form = {k: v[-1] for k, v in urllib.parse.parse_qs(body).items()}
            try:
                answer = provider._grant(
                    form, _basic_credentials(self.headers.get("Authorization"))
                )
            except TokenRequestError as refusal:
                headers = (
                    {"WWW-Authenticate": 'Basic realm="oidc"'} if refusal.status == 401 else {}
                )
                error = {"error": refusal.error, "error_description": refusal.description}
                self._json(refusal.status, error, headers)
                return
            self._json(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

        def _json(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(client_id, secret)`` of an HTTP Basic header (RFC 6749 2.3.1), else ``None``."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)


def request_token(
    token_url: str, client_id: str, client_secret: str, *, scope: str = "", timeout: float = 10.0
) -> dict[str, Any]:
    """POST a client-credentials grant with HTTP Basic auth; return the JSON answer.

    A refusal raises ``TokenRequestError`` with the status and OAuth error code. Blocking:
    call it from a thread (``asyncio.to_thread``) in async code.
    """
    credentials = ":".join(urllib.parse.quote_plus(part) for part in (client_id, client_secret))
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    request = urllib.request.Request(
        token_url,
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    # No proxy from the environment: the server is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as refusal:
        try:
            body = json.load(refusal)
        except ValueError:
            body = {}
        raise TokenRequestError(
            refusal.code, str(body.get("error", "unknown")), str(body.get("error_description", ""))
        ) from None

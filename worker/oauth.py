"""OAUTHBEARER tokens from an OIDC token endpoint (OAuth 2.0 client-credentials grant).

:class:`OidcTokenProvider` is aiokafka's ``sasl_oauth_token_provider``: every client of the
worker shares one, so one token serves every connection until it is due for refresh. A token is
due once 80% of its lifetime has passed (Kafka's own ``sasl.login.refresh.window.factor``), so a
connection never authenticates with a token about to expire. The request is one form POST; the
standard library does it in a thread, so the event loop never waits on the network.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.abc import AbstractTokenProvider
from pydantic import SecretStr

__all__ = ["OAuthTokenError", "OidcTokenProvider", "Token"]

REFRESH_AT = 0.8
"""Share of a token's lifetime after which it is refreshed."""
_REQUEST_TIMEOUT = 10.0


class OAuthTokenError(Exception):
    """The token endpoint did not give a token; the message never holds the secret."""


@dataclass(frozen=True, slots=True)
class Token:
    """An access token, when it is due for refresh and when it expires (monotonic seconds)."""

    value: str
    lifetime: float
    refresh_at: float
    expires_at: float


class OidcTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Client-credentials tokens from ``url``, cached and refreshed before they expire.

    ``on_refresh`` is called with the new token's lifetime in seconds (for a log line).
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        scope: str | None = None,
        on_refresh: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._on_refresh = on_refresh
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.fetched = 0

    async def token(self) -> str:
        """A token with at least a fifth of its lifetime left (fetching one if needed).

        When a refresh fails, the current token is returned while it is still valid; after
        that the failure is raised (:class:`OAuthTokenError`).
        """
        current = self._token
        if current is not None and self._clock() < current.refresh_at:
            return current.value
        async with self._lock:
            current = self._token
            if current is not None and self._clock() < current.refresh_at:
                return current.value
            try:
                fresh = await asyncio.to_thread(self._fetch)
            except OAuthTokenError:
                if current is not None and self._clock() < current.expires_at:
                    return current.value  # still valid: the next connection tries again
                raise
            self._token = fresh
            self.fetched += 1
            if self._on_refresh is not None:
                self._on_refresh(fresh.lifetime)
            return fresh.value

    def _fetch(self) -> Token:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        credentials = ":".join(
            urllib.parse.quote(part, safe="")
            for part in (self.client_id, self._secret.get_secret_value())
        )
        request = urllib.request.Request(
            self.url,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        started = self._clock()
        try:
            with urllib.request.urlopen(request, timeout=_REQUEST_TIMEOUT) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise OAuthTokenError(
                f"token endpoint {self.url} refused client {self.client_id!r}: "
                f"HTTP {exc.code} {_oauth_error(exc.read())}".rstrip()
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OAuthTokenError(f"token endpoint {self.url} unreachable: {reason}") from None
        return _parse_token(body, self.url, started)


def _oauth_error(body: bytes) -> str:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(answer, dict):
        return ""
    parts = [str(answer.get(k)) for k in ("error", "error_description") if answer.get(k)]
    return ": ".join(parts)


def _parse_token(body: bytes, url: str, started: float) -> Token:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise OAuthTokenError(f"token endpoint {url} did not answer JSON") from None
    value = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value:
        raise OAuthTokenError(f"token endpoint {url} answered without an access_token")
    lifetime = _lifetime(answer.get("expires_in"), value)
    if lifetime is None or lifetime <= 0:
        raise OAuthTokenError(
            f"token endpoint {url} gave a token without a lifetime (no expires_in, no exp claim)"
        )
    return Token(value, lifetime, started + REFRESH_AT * lifetime, started + lifetime)


def _lifetime(expires_in: Any, token: str) -> float | None:
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return float(expires_in)
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        return float(expires_in)
    claims = _jwt_claims(token)
    exp = claims.get("exp")
    if isinstance(exp, int | float):
        return float(exp) - time.time()
    return None


def _jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (only to read ``exp``); {} for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}

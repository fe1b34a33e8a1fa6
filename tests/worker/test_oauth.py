"""OidcTokenProvider against a real token endpoint on 127.0.0.1 (the tests' OIDC server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from tests.support.oidc import OIDCServer
from worker.oauth import REFRESH_AT, OAuthTokenError, OidcTokenProvider


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def oidc() -> Iterator[OIDCServer]:
    with OIDCServer(token_lifetime=100) as server:
        yield server


def provider(oidc: OIDCServer, clock: Clock, secret: str | None = None) -> OidcTokenProvider:
    refreshed: list[float] = []
    made = OidcTokenProvider(
        oidc.token_url,
        oidc.client_id,
        SecretStr(secret or oidc.client_secret),
        scope="kafka",
        on_refresh=refreshed.append,
        clock=clock,
    )
    made.refreshed = refreshed  # type: ignore[attr-defined]
    return made


async def test_one_token_serves_until_its_refresh_time(oidc):
    clock = Clock()
    tokens = provider(oidc, clock)
    issued = oidc.tokens_issued
    first = await tokens.token()
    assert await tokens.token() == first
    clock.now += REFRESH_AT * 100 - 1
    assert await tokens.token() == first
    assert oidc.tokens_issued == issued + 1
    clock.now += 2  # past 80% of its 100 s
    await tokens.token()
    assert oidc.tokens_issued == issued + 2
    assert tokens.refreshed == [100.0, 100.0]  # type: ignore[attr-defined]


async def test_a_failed_refresh_keeps_the_valid_token_then_raises_once_it_expired(oidc):
    clock = Clock()
    tokens = provider(oidc, clock)
    first = await tokens.token()
    clock.now += 90  # due for refresh, still valid
    oidc.refusing = True
    try:
        assert await tokens.token() == first
        clock.now += 20  # expired
        with pytest.raises(OAuthTokenError, match="HTTP 503"):
            await tokens.token()
    finally:
        oidc.refusing = False
    issued = oidc.tokens_issued
    await tokens.token()
    assert oidc.tokens_issued == issued + 1


async def test_a_wrong_secret_names_the_endpoint_and_client_never_the_secret(oidc):
    tokens = provider(oidc, Clock(), secret="wrong-secret-77")
    with pytest.raises(OAuthTokenError) as caught:
        await tokens.token()
    message = str(caught.value)
    assert oidc.token_url in message
    assert repr(oidc.client_id) in message
    assert "HTTP 401 invalid_client" in message
    assert "wrong-secret-77" not in message

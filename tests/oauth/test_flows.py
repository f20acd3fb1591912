"""Every OAuth flow over real HTTP against the authlib authorization server, sync and async alike."""

from __future__ import annotations

import functools
import inspect
import socket

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from anyio.from_thread import BlockingPortal, start_blocking_portal

from commtel import OAuthError
from commtel.oauth._client import AsyncOAuthClient, OAuthClient
from commtel.oauth._errors import (
    InvalidClientError,
    InvalidGrantError,
    NoTokenError,
    OAuthNetworkError,
    OAuthProviderError,
    OAuthStateError,
)
from commtel.oauth._providers import OAuthProvider
from commtel.oauth._store import MemoryTokenStore
from commtel.oauth._tokens import Token
from tests.oauth.authserver import approve


class Driven:
    """Calls a sync client directly, or an async client's coroutines through a blocking portal."""

    def __init__(self, client: OAuthClient | AsyncOAuthClient, portal: BlockingPortal | None) -> None:
        self.client = client
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if self._portal is not None and inspect.iscoroutinefunction(attr):
            portal = self._portal
            return lambda *args, **kwargs: portal.call(functools.partial(attr, *args, **kwargs))
        return attr


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest) -> Iterator[Callable[..., Driven]]:
    """Build an OAuth client of the parametrized flavour, driven synchronously from the test."""
    made: list[Driven] = []
    with start_blocking_portal() as portal:

        def factory(*args: Any, **kwargs: Any) -> Driven:
            if request.param == "sync":
                driven = Driven(OAuthClient(*args, **kwargs), None)
            else:
                driven = Driven(AsyncOAuthClient(*args, **kwargs), portal)
            made.append(driven)
            return driven

        yield factory
        for driven in made:
            if isinstance(driven.client, OAuthClient):
                driven.client.close()
            else:
                portal.call(driven.client.aclose)


def test_authorization_code_with_pkce_issues_and_stores_a_token(
    make, provider, client_secret, redirect_uri, authserver
):
    """The authorization URL carries state and an S256 challenge; the callback exchange stores the token."""
    store = MemoryTokenStore()
    client = make(provider, "app", client_secret, redirect_uri=redirect_uri, store=store)
    started = client.authorization_url()
    query = parse_qs(urlsplit(started.url).query)
    assert query["state"] == [started.state]
    assert query["code_challenge_method"] == ["S256"]
    assert started.code_verifier not in started.url
    token = client.handle_callback(approve(started.url))
    assert store.load("testauth") == token
    assert token.refresh_token and token.scope == "read"
    assert authserver.counts["authorization_code"] == 1
    assert client.get_token() == token


def test_public_client_uses_pkce_without_a_secret(make, provider, authserver, redirect_uri):
    """A public client (no secret, auth method none) completes the code flow on PKCE alone."""
    authserver.register_client("spa")
    client = make(provider, "spa", redirect_uri=redirect_uri)
    token = client.handle_callback(approve(client.authorization_url().url))
    assert token.access_token


def test_state_mismatch_is_rejected_before_any_exchange(make, provider, client_secret, redirect_uri, authserver):
    """A callback whose state is not ours raises OAuthStateError; no token request, nothing stored."""
    store = MemoryTokenStore()
    client = make(provider, "app", client_secret, redirect_uri=redirect_uri, store=store)
    callback = approve(client.authorization_url().url)
    forged = callback.replace("state=", "state=forged")
    with pytest.raises(OAuthStateError) as caught:
        client.handle_callback(forged)
    assert caught.value.error == "state_mismatch"
    assert "nothing was exchanged" in str(caught.value)
    assert authserver.counts["authorization_code"] == 0
    assert store.load("testauth") is None


def test_callback_with_provider_error_raises_typed_error(make, provider, client_secret, redirect_uri):
    """A callback carrying ?error=access_denied raises OAuthProviderError with code and description."""
    client = make(provider, "app", client_secret, redirect_uri=redirect_uri)
    started = client.authorization_url()
    with pytest.raises(OAuthProviderError) as caught:
        client.handle_callback({"error": "access_denied", "error_description": "user said no", "state": started.state})
    assert (caught.value.error, caught.value.description) == ("access_denied", "user said no")


def test_reused_code_is_invalid_grant(make, provider, client_secret, redirect_uri):
    """Exchanging the same code twice fails with InvalidGrantError carrying the provider's description."""
    client = make(provider, "app", client_secret, redirect_uri=redirect_uri)
    started = client.authorization_url()
    code = parse_qs(urlsplit(approve(started.url)).query)["code"][0]
    client.exchange_code(code, code_verifier=started.code_verifier)
    with pytest.raises(InvalidGrantError) as caught:
        client.exchange_code(code, code_verifier=started.code_verifier)
    assert caught.value.status_code == 400
    assert caught.value.description
    assert code not in str(caught.value)


def test_refresh_rotates_and_persists_the_new_refresh_token(make, provider, client_secret, redirect_uri, authserver):
    """A refresh stores the rotated refresh token; the old one is then rejected as invalid_grant."""
    store = MemoryTokenStore()
    client = make(provider, "app", client_secret, redirect_uri=redirect_uri, store=store)
    first = client.handle_callback(approve(client.authorization_url().url))
    second = client.refresh()
    assert second.refresh_token != first.refresh_token
    assert store.load("testauth") == second
    store.save("testauth", first)  # roll the store back to the spent refresh token
    with pytest.raises(InvalidGrantError):
        client.refresh()
    assert authserver.counts["refresh_token"] == 2


def test_revoked_refresh_token_raises_invalid_grant(make, provider, client_secret, redirect_uri, authserver):
    """When the server revoked the refresh token, the refresh fails with a typed InvalidGrantError."""
    client = make(provider, "app", client_secret, redirect_uri=redirect_uri)
    client.handle_callback(approve(client.authorization_url().url))
    for issued in authserver.issued():
        issued.refresh_revoked = True
    with pytest.raises(InvalidGrantError) as caught:
        client.refresh()
    assert caught.value.error == "invalid_grant" and caught.value.provider == "testauth"


def test_expired_token_is_refreshed_before_use(make, provider, client_secret, redirect_uri, authserver):
    """A stored token inside the refresh margin is refreshed proactively by get_token."""
    store = MemoryTokenStore()
    client = make(provider, "app", client_secret, redirect_uri=redirect_uri, store=store, refresh_margin_s=60)
    token = client.handle_callback(approve(client.authorization_url().url))
    now = token.issued_at
    nearly = Token(token.access_token, expires_at=now + 30, refresh_token=token.refresh_token, issued_at=now - 3600)
    store.save("testauth", nearly)
    fresh = make(provider, "app", client_secret, store=store, refresh_margin_s=60)
    renewed = fresh.get_token()
    assert renewed.access_token != token.access_token
    assert authserver.counts["refresh_token"] == 1


def test_client_credentials_token_is_fetched_once_and_reused(make, provider, client_secret, authserver):
    """With grant_type='client_credentials', get_token fetches once and serves the cached token after."""
    client = make(provider, "app", client_secret, grant_type="client_credentials")
    assert client.get_token() == client.get_token()
    assert authserver.counts["client_credentials"] == 1


def test_wrong_client_secret_raises_invalid_client(make, provider, client_secret):
    """A wrong secret is InvalidClientError with the HTTP status; the secret is not in the message."""
    client = make(provider, "app", "wrong-secret-value", grant_type="client_credentials")
    with pytest.raises(InvalidClientError) as caught:
        client.client_credentials()
    assert caught.value.status_code == 401
    assert "wrong-secret-value" not in str(caught.value)


def test_unreachable_provider_raises_network_error(make, client_secret):
    """A refused connection is OAuthNetworkError whose cause is httpx's error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = OAuthProvider(
        name="dead", authorize_url=f"http://127.0.0.1:{port}/a", token_url=f"http://127.0.0.1:{port}/t"
    )
    client = make(dead, "app", client_secret, grant_type="client_credentials", timeout_s=2)
    with pytest.raises(OAuthNetworkError) as caught:
        client.get_token()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.error == "network_error"


def test_revoke_tells_the_provider_and_forgets_the_token(make, provider, client_secret, redirect_uri, authserver):
    """revoke() posts to the revocation endpoint, the server revokes, the store forgets."""
    store = MemoryTokenStore()
    client = make(provider, "app", client_secret, redirect_uri=redirect_uri, store=store)
    client.handle_callback(approve(client.authorization_url().url))
    assert client.revoke() is True
    assert authserver.counts["revocation"] == 1
    assert all(t.refresh_revoked for t in authserver.issued())
    assert store.load("testauth") is None
    with pytest.raises(NoTokenError):
        client.get_token()


def test_no_token_without_the_user_is_a_clear_error(make, provider, client_secret):
    """With nothing stored and the authorization-code grant, get_token raises NoTokenError."""
    client = make(provider, "app", client_secret)
    with pytest.raises(NoTokenError) as caught:
        client.get_token()
    assert isinstance(caught.value, OAuthError)
    assert "authorize again" in str(caught.value)

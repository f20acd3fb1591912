"""Bearer auth for httpx and requests against the simulated platform: a 401 means one refresh, one replay."""

from __future__ import annotations

import httpx
import pytest
import requests

from commtel.oauth._client import AsyncOAuthClient, OAuthClient
from commtel.oauth._providers import OAuthProvider
from commtel.simulator import SimulatedPlatform
from commtel.telemetry._tracing import start_span


def _provider(platform: SimulatedPlatform) -> OAuthProvider:
    return OAuthProvider(
        name="sim", authorize_url=f"{platform.url}/oauth/authorize", token_url=f"{platform.url}/oauth/token"
    )


@pytest.fixture(scope="module")
def _platform():
    with SimulatedPlatform("sim", require_auth=True, seed=3) as platform:
        yield platform


@pytest.fixture
def api(_platform: SimulatedPlatform, seen_secrets: set[str]):
    """A platform that requires bearer tokens from its own /oauth/token; its secrets join the scan."""
    _platform.reset()
    seen_secrets.add(_platform.client_secret)
    yield _platform
    seen_secrets.update(_platform._refresh_tokens)


def _client(api: SimulatedPlatform, cls=OAuthClient):
    return cls(_provider(api), api.client_id, api.client_secret, grant_type="client_credentials")


def _remember(client, seen_secrets: set[str]) -> None:
    token = client._token
    seen_secrets.update(filter(None, (token.access_token, token.refresh_token)))


def test_httpx_auth_refreshes_once_and_replays_on_401(api, seen_secrets, spans):
    """After the platform expires every token, one GET costs one 401, one refresh and one replay."""
    oauth = _client(api)
    with httpx.Client(auth=oauth.httpx_auth()) as http:
        assert http.get(f"{api.url}/api/first").status_code == 200
        _remember(oauth, seen_secrets)
        api.expire_tokens()
        with start_span("caller"):
            response = http.post(f"{api.url}/api/second", content=b"payload")
        _remember(oauth, seen_secrets)
    assert response.status_code == 200
    assert response.json()["bytes"] == len(b"payload")  # the body was replayed intact
    assert api.stats.token_requests == 2  # client credentials, then one refresh
    assert [r.status for r in api.requests if r.path == "/api/second"] == [401, 200]
    caller = next(s for s in spans.get_finished_spans() if s.name == "caller")
    assert [e.name for e in caller.events] == ["commtel.oauth.token_rejected"]
    oauth.close()


@pytest.mark.anyio
async def test_async_httpx_auth_refreshes_once_and_replays_on_401(api, seen_secrets):
    """The async twin: AsyncOAuthClient + httpx.AsyncClient, one refresh and one replay on 401."""
    async with _client(api, AsyncOAuthClient) as oauth, httpx.AsyncClient(auth=oauth.httpx_auth()) as http:
        assert (await http.get(f"{api.url}/api/first")).status_code == 200
        _remember(oauth, seen_secrets)
        api.expire_tokens()
        response = await http.get(f"{api.url}/api/second")
        _remember(oauth, seen_secrets)
    assert response.status_code == 200
    assert api.stats.token_requests == 2
    assert [r.status for r in api.requests if r.path == "/api/second"] == [401, 200]


def test_requests_auth_refreshes_once_and_replays_on_401(api, seen_secrets):
    """The requests auth: a 401 triggers one refresh and one replay; history keeps the 401."""
    with _client(api) as oauth, requests.Session() as session:
        session.auth = oauth.requests_auth()
        assert session.get(f"{api.url}/api/first", timeout=5).status_code == 200
        _remember(oauth, seen_secrets)
        api.expire_tokens()
        response = session.post(f"{api.url}/api/second", data=b"payload", timeout=5)
        _remember(oauth, seen_secrets)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert api.stats.token_requests == 2
    assert [r.status for r in api.requests if r.path == "/api/second"] == [401, 200]


def test_a_second_401_is_returned_not_retried(api, seen_secrets):
    """An endpoint that always answers 401 gets exactly one refresh and one replay, then the 401 is returned."""
    with _client(api) as oauth, httpx.Client(auth=oauth.httpx_auth()) as http:
        response = http.get(f"{api.url}/status/401")
        _remember(oauth, seen_secrets)
    assert response.status_code == 401
    assert api.stats.token_requests == 2
    assert [r.status for r in api.requests if r.path == "/status/401"] == [401, 401]


def test_mismatched_client_kind_is_a_type_error(api):
    """An async client's auth on a sync httpx.Client fails loudly instead of blocking."""
    oauth = _client(api, AsyncOAuthClient)
    with httpx.Client(auth=oauth.httpx_auth()) as http, pytest.raises(TypeError):
        http.get(f"{api.url}/api/x")

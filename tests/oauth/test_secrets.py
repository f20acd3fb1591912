"""No token, code, verifier, client secret or Authorization header reaches a span, metric or log line.

Every test in tests/oauth ends with the ``scan`` fixture's check against every secret
seen so far; this module runs all flows and failure paths in one test so one scan
covers them together, and proves the scan would catch a leak.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from commtel import OAuthError
from commtel.oauth._client import OAuthClient
from commtel.oauth._providers import OAuthProvider
from commtel.simulator import SimulatedPlatform
from tests.oauth.authserver import REDIRECT_URI, approve
from tests.oauth.conftest import SEEN


def test_every_flow_and_failure_leaves_no_secret_in_telemetry(provider, client_secret, authserver, scan, seen_secrets):
    """Code+PKCE, refresh, client credentials, revocation, errors and a 401 replay: the scan finds no secret."""
    with OAuthClient(provider, "app", client_secret, redirect_uri=REDIRECT_URI) as client:
        started = client.authorization_url()
        client.handle_callback(approve(started.url))
        client.refresh()
        with pytest.raises(OAuthError):
            client.handle_callback(approve(client.authorization_url().url).replace("state=", "state=x"))
        client.revoke()
        with pytest.raises(OAuthError):
            client.refresh()
    with (
        OAuthClient(provider, "app", client_secret + "-wrong", grant_type="client_credentials") as bad,
        pytest.raises(OAuthError),
    ):
        bad.get_token()
    seen_secrets.add(client_secret + "-wrong")
    with SimulatedPlatform("sim", require_auth=True) as api:
        sim = OAuthProvider(name="sim", authorize_url=f"{api.url}/authorize", token_url=f"{api.url}/oauth/token")
        oauth = OAuthClient(sim, api.client_id, api.client_secret, grant_type="client_credentials")
        with oauth, httpx.Client(auth=oauth.httpx_auth()) as http:
            http.get(f"{api.url}/api/one")
            api.expire_tokens()
            http.get(f"{api.url}/api/two", headers={"X-Trace": "1"})
        seen_secrets.update({api.client_secret, *api._refresh_tokens, oauth._token.access_token})
    # Everything was really exported, so the scan at teardown is not vacuous.
    texts = scan.texts()
    assert "oauth authorization_code" in texts["raw span"]
    assert "commtel_oauth_token_requests_total" in texts["metric sample"]
    assert "oauth token request failed" in texts["json log line"]
    assert len(SEEN) > 10


def test_the_scan_detects_a_leak(scan):
    """A secret written to a log line is found by the scan (the check is not blind)."""
    planted = "planted-secret-value-123"
    logging.getLogger("somewhere").warning("oops %s", planted)
    assert scan.leaks({planted}) == {"json log line": 1, "raw log record": 1}

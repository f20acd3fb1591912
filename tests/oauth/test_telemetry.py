"""OAuth telemetry: token-request counter, expiry gauge, one CLIENT span per token request, logs."""

from __future__ import annotations

import json
import time

import pytest

from opentelemetry.trace import SpanKind, StatusCode

from commtel.oauth._client import OAuthClient
from commtel.oauth._errors import InvalidClientError
from commtel.oauth._events import TokenRequestFinished, TokenUpdated
from commtel.testing import capture_events
from tests.oauth.authserver import REDIRECT_URI, approve


def _sample(registry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_token_requests_are_counted_by_grant_and_result(provider, client_secret, registry):
    """commtel_oauth_token_requests_total counts successes and errors per provider and grant type."""
    with OAuthClient(provider, "app", client_secret, redirect_uri=REDIRECT_URI) as client:
        client.handle_callback(approve(client.authorization_url().url))
        client.refresh()
    with (
        OAuthClient(provider, "app", "not-the-secret", grant_type="client_credentials") as bad,
        pytest.raises(InvalidClientError),
    ):
        bad.get_token()
    name = "commtel_oauth_token_requests_total"
    assert _sample(registry, name, provider="testauth", grant_type="authorization_code", result="success") == 1
    assert _sample(registry, name, provider="testauth", grant_type="refresh_token", result="success") == 1
    assert _sample(registry, name, provider="testauth", grant_type="client_credentials", result="error") == 1


def test_expiry_gauge_is_the_current_tokens_expiry_time(provider, client_secret, registry, authserver):
    """commtel_oauth_token_expiry_timestamp_seconds is the current token's expiry (Unix time), 0 after revocation."""
    authserver.access_ttl_s = 120
    with OAuthClient(provider, "app", client_secret, grant_type="client_credentials") as client:
        token = client.get_token()
        expiry = _sample(registry, "commtel_oauth_token_expiry_timestamp_seconds", provider="testauth")
        assert expiry == token.expires_at
        assert 110 < expiry - time.time() <= 120
        client.revoke()
    assert _sample(registry, "commtel_oauth_token_expiry_timestamp_seconds", provider="testauth") == 0


def test_each_token_request_is_a_client_span_without_secrets(provider, client_secret, spans):
    """A token request makes one CLIENT span with provider, grant type, server and status; errors set ERROR."""
    with OAuthClient(provider, "app", client_secret, grant_type="client_credentials") as client:
        client.get_token()
    with (
        OAuthClient(provider, "app", "not-the-secret", grant_type="client_credentials") as bad,
        pytest.raises(InvalidClientError),
    ):
        bad.get_token()
    ok, failed = [s for s in spans.get_finished_spans() if s.name.startswith("oauth ")]
    assert ok.name == "oauth client_credentials" and ok.kind is SpanKind.CLIENT
    attributes = dict(ok.attributes)
    assert attributes["oauth.provider"] == "testauth"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["http.response.status_code"] == 200
    assert "commtel.correlation_id" in attributes
    assert ok.end_time > ok.start_time
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes)["error.type"] == "invalid_client"


def test_token_requests_are_logged_as_json_with_result(provider, client_secret, scan):
    """Every token request is one JSON log line carrying provider, grant type, result and status."""
    with OAuthClient(provider, "app", client_secret, grant_type="client_credentials") as client:
        client.get_token()
    lines = [json.loads(line) for line in scan.stream.getvalue().splitlines()]
    ours = [line for line in lines if line["logger"] == "commtel.oauth"]
    assert [(line["grant_type"], line["result"], line["status_code"]) for line in ours] == [
        ("client_credentials", "success", 200)
    ]


def test_events_carry_no_credentials(provider, client_secret):
    """The OAuth events a listener receives hold names, codes and times, never a credential."""
    with (
        capture_events() as events,
        OAuthClient(provider, "app", client_secret, grant_type="client_credentials") as client,
    ):
        token = client.get_token()
    kinds = {type(event) for event in events}
    assert {TokenRequestFinished, TokenUpdated} <= kinds
    for event in events:
        assert token.access_token not in repr(event) and client_secret not in repr(event)

"""commtel.compat's TokenManager/OAuthManager keep working over the real flows."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from commtel.compat import OAuthManager, TokenInfo, TokenManager
from commtel.oauth._errors import InvalidGrantError
from tests.oauth.authserver import REDIRECT_URI, approve


def test_token_manager_reads_env_and_builds_bearer_header(monkeypatch):
    """TokenManager.get_token reads <PLATFORM>_ACCESS_TOKEN; create_bearer_header formats it."""
    monkeypatch.setenv("TWITTER_ACCESS_TOKEN", "env-token-1")
    monkeypatch.delenv("DISCORD_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert TokenManager.get_token("twitter") == "env-token-1"
    assert TokenManager.get_token("discord") is None
    assert TokenManager.create_bearer_header("env-token-1") == {"Authorization": "Bearer env-token-1"}


def test_oauth_manager_flow_returns_result_and_error_pairs(provider, client_secret):
    """get_authorization_url, exchange_code_for_token and refresh_token return (result, error) pairs."""
    manager = OAuthManager(provider, "app", client_secret, redirect_uri=REDIRECT_URI)
    url = manager.get_authorization_url(state="random_state")
    code = parse_qs(urlsplit(approve(url)).query)["code"][0]
    token_info, error = manager.exchange_code_for_token(code)
    assert error is None and isinstance(token_info, TokenInfo)
    assert not token_info.is_expired()
    new_token, error = manager.refresh_token(token_info.refresh_token)
    assert error is None and new_token.token != token_info.token
    again, error = manager.refresh_token(token_info.refresh_token)  # rotated away
    assert again is None and isinstance(error, InvalidGrantError)
    manager.close()


def test_for_twitter_uses_the_preset():
    """OAuthManager.for_twitter builds a manager on the Twitter/X preset with PKCE."""
    with OAuthManager.for_twitter("tw-id", "tw-secret-1", redirect_uri="https://app.example/cb") as manager:
        url = manager.get_authorization_url()
    assert url.startswith("https://x.com/i/oauth2/authorize?")
    assert "code_challenge_method=S256" in url

"""Provider presets are data: endpoints per provider, Mastodon per instance, relocatable for tests."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from commtel import ConfigurationError
from commtel.oauth._client import OAuthClient
from commtel.oauth._providers import PROVIDERS, OAuthProvider


def test_presets_cover_the_seed_platforms():
    """Twitter/X, Discord, GitHub and Google are presets; only providers with RFC 7009 have revocation."""
    assert PROVIDERS["x"] is PROVIDERS["twitter"]
    assert PROVIDERS["twitter"].token_url == "https://api.x.com/2/oauth2/token"
    assert PROVIDERS["github"].revocation_url is None
    assert PROVIDERS["google"].authorize_params["access_type"] == "offline"
    assert {p.name for p in PROVIDERS.values()} == {"twitter", "discord", "github", "google"}


def test_mastodon_is_per_instance():
    """The Mastodon preset builds endpoints for the given instance and needs one."""
    provider = OAuthProvider.preset("mastodon", instance="fosstodon.org")
    assert provider.token_url == "https://fosstodon.org/oauth/token"
    assert provider.revocation_url == "https://fosstodon.org/oauth/revoke"
    with pytest.raises(ConfigurationError, match="instance="):
        OAuthProvider.preset("mastodon")
    with pytest.raises(ConfigurationError, match="known:"):
        OAuthProvider.preset("myspace")


def test_at_moves_every_endpoint_and_keeps_paths():
    """provider.at(base) points a preset at a local server, paths unchanged."""
    moved = PROVIDERS["discord"].at("http://127.0.0.1:9999/")
    assert moved.token_url == "http://127.0.0.1:9999/api/oauth2/token"
    assert moved.revocation_url == "http://127.0.0.1:9999/api/oauth2/token/revoke"
    assert moved.name == "discord"


def test_preset_name_builds_a_client_with_provider_params():
    """OAuthClient('google', ...) uses the preset, its default scopes and its extra authorization params."""
    with OAuthClient("google", "id-1", "google-secret-1", redirect_uri="https://app.example/cb") as client:
        query = parse_qs(urlsplit(client.authorization_url().url).query)
    assert query["scope"] == ["openid email"]
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]


def test_invalid_provider_configuration_is_rejected():
    """A provider without an http(s) token URL is a ConfigurationError naming the field."""
    with pytest.raises(ConfigurationError, match="token_url"):
        OAuthProvider(name="x", authorize_url="https://a.example/auth", token_url="ftp://nope")

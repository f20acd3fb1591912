"""OAuth 2 provider presets as plain data: endpoints, default scopes, client authentication.

A provider is a frozen :class:`OAuthProvider`; the presets (Twitter/X, Discord,
GitHub, Google, and Mastodon per instance) are values, not subclasses, so a
provider of your own, or a preset pointed at a test server, is one constructor
call or :func:`dataclasses.replace` away.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from .._exceptions import ConfigurationError


__all__ = ["PROVIDERS", "ClientAuthMethod", "OAuthProvider"]

#: How the client authenticates at the token endpoint (RFC 6749 §2.3, RFC 8414 names).
ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


@dataclass(frozen=True, slots=True)
class OAuthProvider:
    """Where and how to talk OAuth 2 to one authorization server.

    Args:
        name: Short, low-cardinality name used in metric labels and logs (``"twitter"``).
        authorize_url: The authorization endpoint users are sent to.
        token_url: The token endpoint (code exchange, refresh, client credentials).
        revocation_url: The RFC 7009 revocation endpoint, if the provider has one.
        scopes: Scopes requested when the caller names none.
        client_auth: How the client authenticates at the token endpoint.
        pkce: Whether to send a PKCE S256 challenge with authorization requests.
        authorize_params: Extra query parameters for the authorization URL
            (Google's ``access_type=offline`` to get a refresh token).

    .. versionadded:: 0.1.0
    """

    name: str
    authorize_url: str
    token_url: str
    revocation_url: str | None = None
    scopes: tuple[str, ...] = ()
    client_auth: ClientAuthMethod = "client_secret_basic"
    pkce: bool = True
    authorize_params: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.name:
            msg = "OAuthProvider needs a name (used as the metric label 'provider')"
            raise ConfigurationError(msg)
        for label, url in (("authorize_url", self.authorize_url), ("token_url", self.token_url)):
            if urlsplit(url).scheme not in {"http", "https"}:
                msg = f"OAuthProvider {self.name!r}: {label} must be an http(s) URL, got {url!r}"
                raise ConfigurationError(msg)

    @property
    def server_address(self) -> str:
        """Host of the token endpoint (for span attributes)."""
        return urlsplit(self.token_url).hostname or ""

    def at(self, base_url: str) -> OAuthProvider:
        """The same provider with every endpoint moved to *base_url* (tests, proxies, self-hosting).

        Paths are kept: ``twitter.at("http://127.0.0.1:8080")`` posts tokens to
        ``http://127.0.0.1:8080/2/oauth2/token``.

        .. versionadded:: 0.1.0
        """
        base = base_url.rstrip("/")

        def move(url: str) -> str:
            parts = urlsplit(url)
            return base + parts.path + (f"?{parts.query}" if parts.query else "")

        return dataclasses.replace(
            self,
            authorize_url=move(self.authorize_url),
            token_url=move(self.token_url),
            revocation_url=None if self.revocation_url is None else move(self.revocation_url),
        )

    @classmethod
    def mastodon(cls, instance: str, *, scopes: tuple[str, ...] = ("read",)) -> OAuthProvider:
        """The provider for one Mastodon instance (``"mastodon.social"`` or a full URL).

        Mastodon supports PKCE (4.3+), revocation, and ``client_secret_post``.

        .. versionadded:: 0.1.0
        """
        base = instance if "://" in instance else f"https://{instance}"
        base = base.rstrip("/")
        return cls(
            name="mastodon",
            authorize_url=f"{base}/oauth/authorize",
            token_url=f"{base}/oauth/token",
            revocation_url=f"{base}/oauth/revoke",
            scopes=scopes,
            client_auth="client_secret_post",
        )

    @classmethod
    def preset(cls, name: str, *, instance: str | None = None) -> OAuthProvider:
        """Look a preset up by name (``twitter``/``x``, ``discord``, ``github``, ``google``, ``mastodon``).

        Args:
            name: Preset name, case-insensitive.
            instance: The Mastodon instance (required for ``mastodon``).

        Raises:
            ConfigurationError: Unknown name, or ``mastodon`` without *instance*.

        .. versionadded:: 0.1.0
        """
        key = name.lower()
        if key == "mastodon":
            if not instance:
                msg = "the mastodon preset needs instance=, e.g. OAuthProvider.preset('mastodon', instance='mastodon.social')"
                raise ConfigurationError(msg)
            return cls.mastodon(instance)
        try:
            return PROVIDERS[key]
        except KeyError:
            known = ", ".join(sorted({*PROVIDERS, "mastodon"}))
            msg = f"unknown OAuth provider preset {name!r}; known: {known}"
            raise ConfigurationError(msg) from None


_TWITTER = OAuthProvider(
    name="twitter",
    authorize_url="https://x.com/i/oauth2/authorize",
    token_url="https://api.x.com/2/oauth2/token",  # noqa: S106 - an endpoint URL
    revocation_url="https://api.x.com/2/oauth2/revoke",
    scopes=("tweet.read", "users.read", "offline.access"),
)

#: The built-in presets by name (Mastodon is per instance: :meth:`OAuthProvider.mastodon`).
PROVIDERS: Mapping[str, OAuthProvider] = MappingProxyType(
    {
        "twitter": _TWITTER,
        "x": _TWITTER,
        "discord": OAuthProvider(
            name="discord",
            authorize_url="https://discord.com/oauth2/authorize",
            token_url="https://discord.com/api/oauth2/token",  # noqa: S106 - an endpoint URL
            revocation_url="https://discord.com/api/oauth2/token/revoke",
            scopes=("identify",),
        ),
        # GitHub revokes through its REST API (DELETE /applications/{id}/token), not RFC 7009.
        "github": OAuthProvider(
            name="github",
            authorize_url="https://github.com/login/oauth/authorize",
            token_url="https://github.com/login/oauth/access_token",  # noqa: S106 - an endpoint URL
            scopes=("read:user",),
            client_auth="client_secret_post",
        ),
        "google": OAuthProvider(
            name="google",
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - an endpoint URL
            revocation_url="https://oauth2.googleapis.com/revoke",
            scopes=("openid", "email"),
            client_auth="client_secret_post",
            authorize_params=MappingProxyType({"access_type": "offline", "prompt": "consent"}),
        ),
    }
)

"""The older auth helpers (``TokenManager``, ``OAuthManager``) over :class:`OAuthClient` and the token stores.

``TokenManager.get_token(platform)``, ``TokenManager.create_bearer_header(token)``,
``OAuthManager.for_twitter(...)``, ``get_authorization_url(state)``,
``exchange_code_for_token(code) -> (token_info, error)``,
``refresh_token(refresh_token) -> (token_info, error)`` and ``TokenInfo.is_expired()``
keep working; new code should use :class:`OAuthClient` directly, which raises
typed errors instead of returning them.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import OAuthError
from .._timing import wall
from ..oauth._client import OAuthClient
from ..oauth._flow import refresh_token_flow
from ..oauth._providers import OAuthProvider
from ..oauth._store import EnvTokenStore
from ..oauth._tokens import Token


__all__ = ["OAuthManager", "TokenInfo", "TokenManager"]

#: The older name of :class:`~commtel.oauth.Token` (``token_info.token``, ``token_info.is_expired()``).
TokenInfo = Token


class TokenManager:
    """Token helpers: tokens from environment variables, bearer headers.

    .. versionadded:: 0.1.0
    """

    @staticmethod
    def get_token(platform: str) -> str | None:
        """The access token for *platform* from ``<PLATFORM>_ACCESS_TOKEN`` (or ``<PLATFORM>_TOKEN``).

        .. versionadded:: 0.1.0
        """
        token = EnvTokenStore().load(platform)
        return None if token is None else token.access_token

    @staticmethod
    def create_bearer_header(token: str | Token) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``.

        .. versionadded:: 0.1.0
        """
        if isinstance(token, Token):
            return token.bearer_header()
        return Token(access_token=token).bearer_header()


class OAuthManager(OAuthClient):
    """An :class:`~commtel.OAuthClient` whose calls return ``(result, error)`` instead of raising.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()

    @classmethod
    def for_provider(cls, name: str, client_id: str, client_secret: str | None = None, **kwargs: Any) -> OAuthManager:
        """A manager for a preset (``twitter``, ``discord``, ``github``, ``google``).

        .. versionadded:: 0.1.0
        """
        return cls(OAuthProvider.preset(name), client_id, client_secret, **kwargs)

    @classmethod
    def for_twitter(cls, client_id: str, client_secret: str | None = None, **kwargs: Any) -> OAuthManager:
        """A manager for Twitter/X (PKCE, ``offline.access`` for refresh tokens).

        .. versionadded:: 0.1.0
        """
        return cls.for_provider("twitter", client_id, client_secret, **kwargs)

    @classmethod
    def for_discord(cls, client_id: str, client_secret: str | None = None, **kwargs: Any) -> OAuthManager:
        """A manager for Discord.

        .. versionadded:: 0.1.0
        """
        return cls.for_provider("discord", client_id, client_secret, **kwargs)

    @classmethod
    def for_mastodon(
        cls, instance: str, client_id: str, client_secret: str | None = None, **kwargs: Any
    ) -> OAuthManager:
        """A manager for one Mastodon *instance*.

        .. versionadded:: 0.1.0
        """
        return cls(OAuthProvider.mastodon(instance), client_id, client_secret, **kwargs)

    def get_authorization_url(self, state: str | None = None) -> str:
        """The authorization URL (with PKCE); the request is remembered for the exchange.

        .. versionadded:: 0.1.0
        """
        return self.authorization_url(state=state).url

    def exchange_code_for_token(self, code: str, state: str | None = None) -> tuple[Token | None, OAuthError | None]:
        """Exchange *code* for a token; ``(token, None)`` or ``(None, error)``.

        Uses the PKCE verifier of the request started with *state* (default: the
        latest). Checking the callback's state is up to the caller here; prefer
        :meth:`OAuthClient.handle_callback`, which checks it.

        .. versionadded:: 0.1.0
        """
        started = self._latest_pending(state)
        verifier = None if started is None else started.code_verifier
        try:
            return self.exchange_code(code, code_verifier=verifier), None
        except OAuthError as error:
            return None, error

    def refresh_token(self, refresh_token: str) -> tuple[Token | None, OAuthError | None]:
        """Refresh with *refresh_token*; the new token is stored. ``(token, None)`` or ``(None, error)``.

        .. versionadded:: 0.1.0
        """
        try:
            token = self._send(refresh_token_flow(self.creds, refresh_token=refresh_token, now=wall()))
        except OAuthError as error:
            return None, error
        return self._save(token), None

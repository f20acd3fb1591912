"""OAuth 2 client: authorization code + PKCE, client credentials, refresh, token stores.

Tokens refresh ahead of expiry (single-flight across threads, tasks and processes);
secrets never reach a span, metric or log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports


if TYPE_CHECKING:
    from ._client import AsyncOAuthClient, AuthorizationRequest, OAuthClient
    from ._errors import (
        InvalidClientError,
        InvalidGrantError,
        NoTokenError,
        OAuthNetworkError,
        OAuthProviderError,
        OAuthStateError,
    )
    from ._events import CallbackRejected, TokenRejected, TokenRequestFinished, TokenStoreWriteFailed, TokenUpdated
    from ._providers import PROVIDERS, OAuthProvider
    from ._store import EnvTokenStore, FileTokenStore, MemoryTokenStore, TokenStore
    from ._tokens import Token


__all__ = [
    "PROVIDERS",
    "AsyncOAuthClient",
    "AuthorizationRequest",
    "CallbackRejected",
    "EnvTokenStore",
    "FileTokenStore",
    "InvalidClientError",
    "InvalidGrantError",
    "MemoryTokenStore",
    "NoTokenError",
    "OAuthClient",
    "OAuthNetworkError",
    "OAuthProvider",
    "OAuthProviderError",
    "OAuthStateError",
    "Token",
    "TokenRejected",
    "TokenRequestFinished",
    "TokenStore",
    "TokenStoreWriteFailed",
    "TokenUpdated",
]

if not TYPE_CHECKING:  # mypy sees the imports above; at run time names load on first use
    __getattr__, __dir__ = exports(
        __name__,
        globals(),
        {
            "._client": ("AsyncOAuthClient", "AuthorizationRequest", "OAuthClient"),
            "._errors": (
                "InvalidClientError",
                "InvalidGrantError",
                "NoTokenError",
                "OAuthNetworkError",
                "OAuthProviderError",
                "OAuthStateError",
            ),
            "._events": (
                "CallbackRejected",
                "TokenRejected",
                "TokenRequestFinished",
                "TokenStoreWriteFailed",
                "TokenUpdated",
            ),
            "._providers": ("PROVIDERS", "OAuthProvider"),
            "._store": ("EnvTokenStore", "FileTokenStore", "MemoryTokenStore", "TokenStore"),
            "._tokens": ("Token",),
        },
    )

"""OAuth 2 client: authorization code + PKCE, client credentials, refresh, token stores.

Tokens refresh ahead of expiry (single-flight across threads, tasks and processes);
secrets never reach a span, metric or log line.
"""

from __future__ import annotations

from ._client import AsyncOAuthClient, AuthorizationRequest, OAuthClient
from ._errors import (
    InvalidClientError,
    InvalidGrantError,
    NoTokenError,
    OAuthNetworkError,
    OAuthProviderError,
    OAuthStateError,
)
from ._events import CallbackRejected, TokenRejected, TokenRequestFinished, TokenUpdated
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
    "TokenUpdated",
]

"""Events the OAuth client emits; the telemetry layer turns them into spans, metrics and logs.

None of them carries a credential: only provider names, grant types, error codes,
statuses and times.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event


__all__ = [
    "CallbackRejected",
    "OAuthClientCreated",
    "TokenRejected",
    "TokenRequestFinished",
    "TokenStoreWriteFailed",
    "TokenUpdated",
]


@dataclass(frozen=True, slots=True)
class OAuthClientCreated(Event):
    """An OAuth client was built; telemetry exposes its token-request series at 0 from now on.

    Attributes:
        provider: Provider name.
        grant_types: The ``grant_type`` values its token requests can carry.

    .. versionadded:: 0.1.0
    """

    provider: str
    grant_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenRequestFinished(Event):
    """One request to a token or revocation endpoint finished (either way).

    Attributes:
        provider: Provider name.
        grant_type: ``authorization_code``, ``refresh_token``, ``client_credentials`` or ``revocation``.
        success: Whether the provider granted the request.
        error: The provider's error code, ``network_error``, or ``None``.
        status_code: HTTP status, ``None`` when no response arrived.
        server_address: Host of the endpoint.
        server_port: Port of the endpoint.
        started_at_ns: Wall-clock start in epoch nanoseconds (for a span made afterwards).
        duration_s: How long the request took.
        expires_at: Expiry of the issued access token (epoch seconds), if any.

    .. versionadded:: 0.1.0
    """

    provider: str
    grant_type: str
    success: bool
    error: str | None
    status_code: int | None
    server_address: str
    server_port: int | None
    started_at_ns: int
    duration_s: float
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class TokenUpdated(Event):
    """The client's current token changed: obtained, refreshed, loaded from a store, or removed.

    Attributes:
        provider: Provider name.
        expires_at: Expiry of the new token (epoch seconds); ``None`` if unknown or removed.
        removed: True when the token was revoked or deleted.

    .. versionadded:: 0.1.0
    """

    provider: str
    expires_at: float | None
    removed: bool = False


@dataclass(frozen=True, slots=True)
class TokenRejected(Event):
    """An API answered 401 to a token, so the client renews it and the request is replayed once.

    .. versionadded:: 0.1.0
    """

    provider: str


@dataclass(frozen=True, slots=True)
class CallbackRejected(Event):
    """An authorization callback was refused before any code exchange.

    Attributes:
        provider: Provider name.
        reason: ``state_mismatch`` or the provider's error code from the callback.

    .. versionadded:: 0.1.0
    """

    provider: str
    reason: str


@dataclass(frozen=True, slots=True)
class TokenStoreWriteFailed(Event):
    """A token store could not save a token (disk full, read-only …); it keeps it in memory meanwhile.

    Emitted once per key until a save of that key succeeds again.

    Attributes:
        store: Which store (``"file"``).
        key: The store key (a provider or ``provider:user`` name, not a credential).
        error: The ``errno`` name (``ENOSPC``, ``EROFS`` …) or the exception type.

    .. versionadded:: 0.2.0
    """

    store: str
    key: str
    error: str

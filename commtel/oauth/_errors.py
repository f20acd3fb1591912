"""Typed OAuth errors, and the mapping from a provider's error response to them.

::

    OAuthError                       (commtel._exceptions; .error, .description, .provider)
    ├── OAuthProviderError           the provider answered with an error (.status_code)
    │   ├── InvalidGrantError        invalid_grant: code/refresh token revoked, expired or reused
    │   └── InvalidClientError       invalid_client: wrong client id or secret
    ├── OAuthNetworkError            the provider could not be reached (``__cause__`` is httpx's error)
    ├── OAuthStateError              callback state missing or not ours: nothing was exchanged or stored
    └── NoTokenError                 no usable token and no grant to get one without the user

A description has every credential the request sent scrubbed out before it
reaches a message, so a provider that echoes one back cannot leak it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._exceptions import OAuthError
from ._secrets import scrub


__all__ = [
    "InvalidClientError",
    "InvalidGrantError",
    "NoTokenError",
    "OAuthNetworkError",
    "OAuthProviderError",
    "OAuthStateError",
    "provider_error",
]

_MAX_DESCRIPTION = 300


def _clean(description: Any, sent: Iterable[str | None] = ()) -> str | None:
    if description is None or description == "":
        return None
    return scrub(str(description), sent)[:_MAX_DESCRIPTION]


class OAuthProviderError(OAuthError):
    """The provider answered a token, revocation or authorization request with an error.

    Args:
        error: The provider's error code (``invalid_grant``, ``invalid_scope`` …).
        description: The provider's ``error_description`` (shortened; scrub credentials first).
        provider: The provider's name.
        status_code: HTTP status of the response (``None`` for an error in a callback URL).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, error: str, description: str | None = None, *, provider: str = "", status_code: int | None = None
    ) -> None:
        self.status_code = status_code
        super().__init__(error, _clean(description), provider=provider)


class InvalidGrantError(OAuthProviderError):
    """``invalid_grant``: the code or refresh token is invalid, expired, revoked or reused.

    The user has to authorize again.

    .. versionadded:: 0.1.0
    """


class InvalidClientError(OAuthProviderError):
    """``invalid_client``: the provider does not accept this client id and secret.

    .. versionadded:: 0.1.0
    """


class OAuthNetworkError(OAuthError):
    """The provider could not be reached or did not answer in time; ``__cause__`` says why.

    .. versionadded:: 0.1.0
    """

    def __init__(self, description: str, *, provider: str = "") -> None:
        super().__init__("network_error", _clean(description), provider=provider)


class OAuthStateError(OAuthError):
    """The callback's ``state`` is missing or unknown (possible CSRF); nothing was exchanged or stored.

    .. versionadded:: 0.1.0
    """

    def __init__(self, description: str, *, provider: str = "") -> None:
        super().__init__("state_mismatch", description, provider=provider)


class NoTokenError(OAuthError):
    """No usable token is stored and no grant can get one without the user.

    .. versionadded:: 0.1.0
    """

    def __init__(self, description: str, *, provider: str = "") -> None:
        super().__init__("no_token", description, provider=provider)


_BY_CODE: dict[str, type[OAuthProviderError]] = {
    "invalid_grant": InvalidGrantError,
    "invalid_client": InvalidClientError,
    # GitHub answers 200 with these codes instead of RFC 6749's.
    "bad_verification_code": InvalidGrantError,
    "incorrect_client_credentials": InvalidClientError,
}


def provider_error(
    body: Mapping[str, Any] | None, *, provider: str, status_code: int | None, sent: Iterable[str | None] = ()
) -> OAuthProviderError:
    """The typed error for a provider's error response; credentials in *sent* are scrubbed out."""
    body = body or {}
    code = scrub(str(body.get("error") or (f"http_{status_code}" if status_code else "invalid_response")), sent)
    cls = _BY_CODE.get(code, OAuthProviderError)
    return cls(code, _clean(body.get("error_description"), sent), provider=provider, status_code=status_code)

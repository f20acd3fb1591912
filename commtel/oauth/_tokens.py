"""The OAuth token model: what a token endpoint returned, with expiry and a refresh margin.

Expiry is kept as wall-clock epoch seconds (``expires_at``) so a stored token
stays meaningful across processes and restarts. Every secret a :class:`Token`
holds is registered for redaction the moment the token is built, and its
``repr`` never shows one.
"""

from __future__ import annotations

import math

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _validation as check
from .._timing import wall
from ._secrets import seen


__all__ = ["Token"]


def _optional_float(value: Any) -> float | None:
    """A finite number from a provider's answer or a stored token; anything else is "unknown" (``None``)."""
    if isinstance(value, bool):  # float(True) would be 1.0; None and "" fail float() below
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


@dataclass(frozen=True, slots=True)
class Token:
    """An OAuth 2 access token with its refresh token and expiry.

    Args:
        access_token: The bearer credential (never shown in ``repr``).
        token_type: Scheme of the ``Authorization`` header, normally ``"Bearer"``.
        expires_at: Wall-clock expiry in epoch seconds; ``None`` when the provider gave none.
        refresh_token: Credential for the refresh grant, if the provider issued one.
        scope: Granted scope, space-separated, as the provider returned it.
        issued_at: When the token was obtained (epoch seconds); bounds the refresh margin.
        id_token: The OpenID Connect ID token, if any.

    .. versionadded:: 0.1.0
    """

    access_token: str = field(repr=False)
    token_type: str = "Bearer"  # noqa: S105 - a scheme name
    expires_at: float | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    issued_at: float | None = None
    id_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check.text(self.access_token, "access_token", owner="Token", empty=False)
        for name in ("expires_at", "issued_at"):
            check.number(getattr(self, name), name, owner="Token", optional=True)
        # Access and ID tokens retire after their expiry; a refresh token (no known expiry)
        # when newer credentials push it out of the bounded registry.
        seen(self.access_token, self.id_token, expires_at=self.expires_at)
        seen(self.refresh_token)

    @classmethod
    def from_response(cls, data: Mapping[str, Any], *, now: float, refresh_token: str | None = None) -> Token:
        """Build a token from a token-endpoint JSON body received at *now* (epoch seconds).

        Args:
            data: The parsed response (``access_token``, ``expires_in`` …).
            now: When the request was sent; expiry counts from then, erring early.
            refresh_token: The refresh token to keep when the response carries none
                (a refresh without rotation).

        .. versionadded:: 0.1.0
        """
        expires_in = _optional_float(data.get("expires_in"))
        expires_at = _optional_float(data.get("expires_at"))
        if expires_in is not None:
            expires_at = now + expires_in
        token_type = str(data.get("token_type") or "Bearer")
        return cls(
            access_token=str(data["access_token"]),
            token_type="Bearer" if token_type.lower() == "bearer" else token_type,
            expires_at=expires_at,
            refresh_token=data.get("refresh_token") or refresh_token,
            scope=data.get("scope"),
            issued_at=now,
            id_token=data.get("id_token"),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Token:
        """Rebuild a token saved with :meth:`to_dict`.

        .. versionadded:: 0.1.0
        """
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type") or "Bearer"),
            expires_at=_optional_float(data.get("expires_at")),
            refresh_token=data.get("refresh_token"),
            scope=data.get("scope"),
            issued_at=_optional_float(data.get("issued_at")),
            id_token=data.get("id_token"),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for stores); it contains the secrets, so keep it private.

        .. versionadded:: 0.1.0
        """
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "issued_at": self.issued_at,
            "id_token": self.id_token,
        }

    @property
    def token(self) -> str:
        """The access token (short name for :attr:`access_token`)."""
        return self.access_token

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value, e.g. ``"Bearer abc…"``."""
        return f"{self.token_type} {self.access_token}"

    def bearer_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer …"}`` for a request's headers.

        .. versionadded:: 0.1.0
        """
        return {"Authorization": self.authorization}

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until expiry (negative once expired), ``None`` if unknown.

        .. versionadded:: 0.1.0
        """
        if self.expires_at is None:
            return None
        return self.expires_at - (wall() if now is None else now)

    def is_expired(self, now: float | None = None, *, margin_s: float = 0.0) -> bool:
        """Whether the token is expired, or will be within *margin_s* seconds.

        A token without a known expiry never counts as expired (a 401 tells).

        .. versionadded:: 0.1.0
        """
        remaining = self.expires_in(now)
        return remaining is not None and remaining <= margin_s

    def needs_refresh(self, now: float, margin_s: float) -> bool:
        """Whether to refresh proactively at *now* with clock-skew margin *margin_s*.

        The margin is capped at half the token's lifetime, so a token that lives
        for 10 s is not refreshed on every call under a 60 s margin.

        .. versionadded:: 0.1.0
        """
        if self.expires_at is None:
            return False
        if self.issued_at is not None:
            margin_s = min(margin_s, max(0.0, self.expires_at - self.issued_at) / 2)
        return self.expires_at - now <= margin_s

    def same_credential(self, other: Token | None) -> bool:
        """Whether *other* carries the same access token (a rejected token is recognised by it).

        .. versionadded:: 0.1.0
        """
        return other is not None and other.access_token == self.access_token

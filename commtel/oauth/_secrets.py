"""Credentials the OAuth client handles: registered for redaction the moment they are seen.

Rotating credentials (tokens, codes, PKCE verifiers) retire from the redaction
registry after their expiry or when a storm of newer ones pushes them out; the
client secret is tied to its client and stays redacted as long as the client lives.
:func:`scrub` removes known credentials from text a provider sent back (an
``error_description`` that echoes a token) without any global state.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._redaction import REDACTED, _register_rotating, register_secret


__all__ = ["REDACTED", "owned", "scrub", "seen"]


def seen(*values: str | None, expires_at: float | None = None) -> None:
    """Register rotating credentials: redacted in logs, spans and exceptions until *expires_at* (or evicted by newer ones)."""
    _register_rotating(values, expires_at)


def owned(value: str | None, owner: object) -> None:
    """Register a long-lived credential (a client secret): redacted while *owner* lives, never evicted."""
    register_secret(value, owner=owner)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """*text* with every one of *secrets* replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text

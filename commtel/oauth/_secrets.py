"""Credentials the OAuth client handles: registered for redaction the moment they are seen.

:func:`scrub` removes known credentials from text a
provider sent back (an ``error_description`` that echoes a token) without any
global state.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._redaction import REDACTED, register_secret


__all__ = ["REDACTED", "scrub", "seen"]


def seen(*values: str | None) -> None:
    """Register every non-empty *values* as a secret: redacted in logs, spans and exceptions."""
    for value in values:
        if value:
            register_secret(value)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """*text* with every one of *secrets* replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text

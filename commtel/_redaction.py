"""Redaction of secrets before anything leaves the process (logs, spans, exceptions).

Two rules: values under sensitive keys (authorization, token, password, secret …)
are replaced wholesale, and any value registered with :func:`register_secret` is
replaced wherever it appears inside text. With nothing registered the text path is
a single ``if``.
"""

from __future__ import annotations

import re
import threading

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any


__all__ = [
    "MAX_SECRETS",
    "REDACTED",
    "is_sensitive_key",
    "redact_mapping",
    "redact_text",
    "redact_value",
    "register_secret",
]

REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 4
# Rotating tokens would grow the registry forever; the oldest (long expired) go first.
MAX_SECRETS = 512

_SENSITIVE_KEY = re.compile(
    r"(authorization|auth[-_]?header|cookie|passw(or)?d|passwd|secret|token|api[-_]?key|"
    r"private[-_]?key|credential|code[-_]?verifier|client[-_]?assertion|session[-_]?key|^code$)",
    re.IGNORECASE,
)
# Bearer/Basic credentials and key=value secrets embedded in free text.
_INLINE = re.compile(
    r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}"
    r"|((?:access_token|refresh_token|id_token|client_secret|password|code_verifier|api_key)"
    r"[\"']?\s*[=:]\s*[\"']?)[^\s&\"',;]+"
)

_lock = threading.Lock()
_secrets: OrderedDict[str, None] = OrderedDict()
# Compiled on the first redaction after a change, not per registration: a refresh storm
# registering many tokens then costs one compile, not one per token.
_pattern: re.Pattern[str] | None = None
_stale = False


def register_secret(value: str | None) -> None:
    """Redact *value* wherever it appears in logs, span attributes and exception messages.

    Values shorter than 4 characters are ignored (they would redact ordinary text). The
    registry keeps the newest 512 values (``MAX_SECRETS``): rotated tokens retire.

    .. versionadded:: 0.1.0
    """
    global _stale  # noqa: PLW0603
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _secrets:
            _secrets.move_to_end(value)
            return
        _secrets[value] = None
        while len(_secrets) > MAX_SECRETS:
            _secrets.popitem(last=False)
        _stale = True


def _secret_pattern() -> re.Pattern[str] | None:
    global _pattern, _stale  # noqa: PLW0603
    if _stale:
        with _lock:
            if _stale:
                alternatives = sorted(_secrets, key=len, reverse=True)
                _pattern = re.compile("|".join(re.escape(s) for s in alternatives)) if alternatives else None
                _stale = False
    return _pattern


def is_sensitive_key(key: str) -> bool:
    """Whether a field, header or attribute named *key* holds a credential."""
    return _SENSITIVE_KEY.search(key) is not None


def _inline(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2)) + REDACTED


def redact_text(text: str) -> str:
    """Replace registered secrets and inline credentials in *text*."""
    pattern = _secret_pattern()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _INLINE.sub(_inline, text)


def redact_value(key: str, value: Any) -> Any:
    """Redact one keyed value: wholesale under a sensitive key, else inside text."""
    if is_sensitive_key(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value("", item) for item in value)
    return value


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of *values* with every sensitive entry redacted."""
    return {key: redact_value(str(key), value) for key, value in values.items()}

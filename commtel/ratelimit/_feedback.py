"""Read a server's rate-limit answer (status + headers) into how long a key must wait.

Pure: the caller passes the wall-clock time (for HTTP dates and epoch resets).
Understood headers, most authoritative first:

* ``Retry-After``: delta seconds or an HTTP-date (RFC 9110 §10.2.3);
* ``X-RateLimit-Remaining`` with ``X-RateLimit-Reset`` (epoch seconds, epoch
  milliseconds or delta seconds, as GitHub, X and Mastodon send them) or
  ``X-RateLimit-Reset-After`` (delta, Discord);
* IETF ``RateLimit`` (``"default";r=0;t=30`` in the current draft, or the older
  ``limit=100, remaining=0, reset=30``), the older split ``RateLimit-Remaining`` /
  ``RateLimit-Reset`` headers, and ``RateLimit-Policy`` (``"default";q=100;w=60``)
  whose window is the fallback wait when a server says 0 remaining without a reset.

A 429 (or a 503 with ``Retry-After``) always blocks: for ``Retry-After``, else the
reset, else *default_wait_s*. Any other answer blocks only when it says nothing
remains and when it resets. Negative, unparsable and absurd values are reported
in :attr:`ServerFeedback.problems`; waits beyond *max_wait_s* are clamped.
"""

from __future__ import annotations

import math
import re

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


__all__ = ["ServerFeedback", "parse_feedback"]

# Reset values at or above this are epoch seconds (2001-09-09), above _EPOCH_MS epoch ms.
_EPOCH_S = 1e9
_EPOCH_MS = 1e12
_PARAM = re.compile(r"""\b([A-Za-z][\w-]*)\s*=\s*("?)(-?[\w.+:-]*)\2""")

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class ServerFeedback:
    """What a response says about a key's server-side budget.

    Attributes:
        delay_s: Seconds every caller of the key must wait (``None``: no wait needed).
        source: Header (or ``"status"``) that decided *delay_s*.
        remaining: Requests the server says remain, if it said.
        limit: The server's quota, if it said (``X-RateLimit-Limit``, ``RateLimit-Policy``).
        clamped: *delay_s* was cut to the configured maximum.
        problems: Human-readable notes on values that were rejected or clamped.

    .. versionadded:: 0.1.0
    """

    delay_s: float | None
    source: str = ""
    remaining: int | None = None
    limit: int | None = None
    clamped: bool = False
    problems: tuple[str, ...] = ()


def _lower(headers: Headers) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name).lower(): str(value) for name, value in items}


def _short(value: str) -> str:
    return repr(value[:40] + ("…" if len(value) > 40 else ""))


class _Reader:
    """Collects parsed numbers and the problems met on the way."""

    def __init__(self, headers: Headers, now_wall: float) -> None:
        self.headers = _lower(headers)
        self.now_wall = now_wall
        self.problems: list[str] = []

    def number(self, name: str, raw: str | None) -> float | None:
        if raw is None:
            return None
        try:
            value = float(raw.strip())
        except ValueError:
            self.problems.append(f"{name}: unparsable value {_short(raw)} ignored")
            return None
        if not math.isfinite(value) or value < 0:
            self.problems.append(f"{name}: invalid value {_short(raw)} ignored")
            return None
        return value

    def retry_after(self) -> float | None:
        raw = self.headers.get("retry-after")
        if raw is None:
            return None
        if raw.strip().lstrip("-").replace(".", "", 1).isdigit():
            return self.number("Retry-After", raw)
        try:
            when = parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError):
            self.problems.append(f"Retry-After: unparsable value {_short(raw)} ignored")
            return None
        delay = when.timestamp() - self.now_wall
        return max(0.0, delay)

    def reset(self, name: str, raw: str | None) -> float | None:
        value = self.number(name, raw)
        if value is None:
            return None
        if value >= _EPOCH_MS:
            return max(0.0, value / 1000.0 - self.now_wall)
        if value >= _EPOCH_S:
            return max(0.0, value - self.now_wall)
        return value

    def first_reset(self, ietf: Mapping[str, str]) -> tuple[float | None, str]:
        """The first usable reset among the known headers, and its header name."""
        get = self.headers.get
        for name, raw in (
            ("X-RateLimit-Reset-After", get("x-ratelimit-reset-after")),
            ("X-RateLimit-Reset", get("x-ratelimit-reset")),
            ("RateLimit", ietf.get("t", ietf.get("reset"))),
            ("RateLimit-Reset", get("ratelimit-reset")),
        ):
            reset = self.reset(name, raw)
            if reset is not None:
                return reset, name
        return None, ""

    def count(self, name: str, raw: str | None) -> int | None:
        value = self.number(name, raw)
        return None if value is None else int(value)


def _params(raw: str | None) -> dict[str, str]:
    return {} if raw is None else {k.lower(): v for k, _, v in _PARAM.findall(raw)}


def parse_feedback(
    status: int,
    headers: Headers,
    *,
    now_wall: float,
    max_wait_s: float,
    default_wait_s: float = 1.0,
) -> ServerFeedback:
    """Turn a response's *status* and *headers* into a :class:`ServerFeedback`.

    Args:
        status: HTTP status code (429 and 503 are throttling answers).
        headers: Response headers (any case; a mapping or ``(name, value)`` pairs).
        now_wall: Current Unix time, for HTTP dates and epoch resets.
        max_wait_s: Longest wait accepted from a server; longer ones are clamped.
        default_wait_s: Wait after a 429 that says nothing about when to retry.

    Returns:
        The wait (``delay_s``) and what the server said.

    .. versionadded:: 0.1.0
    """
    reader = _Reader(headers, now_wall)
    get = reader.headers.get
    retry_after = reader.retry_after()
    ietf = _params(get("ratelimit"))
    policy = _params(get("ratelimit-policy"))
    remaining = reader.count("X-RateLimit-Remaining", get("x-ratelimit-remaining"))
    if remaining is None:
        remaining = reader.count(
            "RateLimit remaining", ietf.get("r", ietf.get("remaining", get("ratelimit-remaining")))
        )
    limit = reader.count("X-RateLimit-Limit", get("x-ratelimit-limit"))
    if limit is None:
        limit = reader.count("RateLimit-Policy quota", policy.get("q", ietf.get("limit", get("ratelimit-limit"))))
    reset, reset_source = reader.first_reset(ietf)
    if reset is None and remaining == 0:
        reset, reset_source = reader.number("RateLimit-Policy window", policy.get("w")), "RateLimit-Policy"

    delay: float | None = None
    source = ""
    if status == 429 or (status == 503 and retry_after is not None):
        if retry_after is not None:
            delay, source = retry_after, "Retry-After"
        elif reset is not None:
            delay, source = reset, reset_source
        else:
            delay, source = default_wait_s, "status"
    elif remaining == 0 and reset is not None:
        delay, source = reset, reset_source

    clamped = False
    if delay is not None and delay > max_wait_s:
        reader.problems.append(f"{source}: wait of {delay:.0f}s exceeds max_server_wait_s={max_wait_s:g}; clamped")
        delay, clamped = max_wait_s, True
    return ServerFeedback(delay, source, remaining, limit, clamped, tuple(reader.problems))

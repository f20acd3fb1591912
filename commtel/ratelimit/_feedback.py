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
  Both are HTTP structured fields, read by a linear parser (:mod:`._sfv`): a 64 KB
  hostile header costs well under 10 ms. With several policies
  (``"minute";r=0;t=30, "day";r=500;t=3600``) the most restrictive one decides: an
  exhausted policy blocks until its reset (the longest, if several are exhausted),
  otherwise the policy with the fewest requests left is reported.

A 429 (or a 503 with ``Retry-After``) always blocks: for ``Retry-After``, else the
reset, else *default_wait_s*. Any other answer blocks only when it says nothing
remains and when it resets. Negative, unparsable and absurd values are reported
in :attr:`ServerFeedback.problems`; waits beyond *max_wait_s* are clamped.
"""

from __future__ import annotations

import math

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from . import _sfv


__all__ = ["ServerFeedback", "parse_feedback"]

# Reset values at or above this are epoch seconds (2001-09-09), above _EPOCH_MS epoch ms.
_EPOCH_S = 1e9
_EPOCH_MS = 1e12

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

    def first_reset(self, ietf: _Policy) -> tuple[float | None, str]:
        """The first usable reset among the known headers (``None``: none), and its header name."""
        get = self.headers.get
        for name, raw in (
            ("X-RateLimit-Reset-After", get("x-ratelimit-reset-after")),
            ("X-RateLimit-Reset", get("x-ratelimit-reset")),
        ):
            reset = self.reset(name, raw)
            if reset is not None:
                return reset, name
        if ietf.reset is not None:
            return ietf.reset, "RateLimit"
        # The last candidate: a caller reads the name only when the reset is not None.
        return self.reset("RateLimit-Reset", get("ratelimit-reset")), "RateLimit-Reset"

    def count(self, name: str, raw: str | None) -> int | None:
        value = self.number(name, raw)
        return None if value is None else int(value)

    def members(self, header: str) -> list[tuple[str, dict[str, float]]]:
        """The policies of structured field *header*: ``(name, {param: non-negative number})``.

        The current drafts' List (``"name";r=0;t=30``) or the older Dictionary
        (``limit=100, remaining=0, reset=30``, one unnamed policy). A field that is
        neither is ignored whole (RFC 9651); a negative or non-numeric parameter is
        ignored alone; each is reported in :attr:`problems`.
        """
        raw = self.headers.get(header.lower())
        if raw is None:
            return []
        try:
            items = [(str(item.value), item.params) for item in _sfv.parse_list(raw)]
        except _sfv.ParseError as list_error:
            try:
                older = _sfv.parse_dictionary(raw)
            except _sfv.ParseError:
                self.problems.append(f"{header}: not a structured field ({list_error}); ignored")
                return []
            items = [("", {key: member.value for key, member in older.items() if not isinstance(member.value, tuple)})]
        return [(name, self._numbers(header, name, params)) for name, params in items]

    def _numbers(self, header: str, name: str, params: Mapping[str, object]) -> dict[str, float]:
        numbers: dict[str, float] = {}
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                self.problems.append(f"{header}: {name or 'policy'} {key}={_short(str(value))} ignored")
                continue
            numbers[key] = float(value)
        return numbers


@dataclass(frozen=True, slots=True)
class _Policy:
    """The deciding IETF rate-limit policy: what remains, when it resets, its quota and window."""

    remaining: float | None = None
    reset: float | None = None
    limit: float | None = None
    window: float | None = None


def _ietf_policy(reader: _Reader) -> _Policy:
    """The most restrictive policy of ``RateLimit`` joined with ``RateLimit-Policy`` by name.

    An exhausted policy (``r=0``) wins, the one with the longest wait if several are;
    otherwise the one with the fewest remaining requests.
    """
    quotas = dict(reader.members("RateLimit-Policy"))
    candidates: list[_Policy] = []
    for name, params in reader.members("RateLimit"):
        quota = quotas.get(name, {})
        candidates.append(
            _Policy(
                remaining=params.get("r", params.get("remaining")),
                reset=params.get("t", params.get("reset")),
                limit=params.get("limit", quota.get("q")),
                window=quota.get("w"),
            )
        )
    if not candidates:
        limits = [q for params in quotas.values() if (q := params.get("q")) is not None]
        return _Policy(limit=min(limits, default=None))
    exhausted = [policy for policy in candidates if policy.remaining == 0]
    if exhausted:
        return max(exhausted, key=_wait_of)
    known = [policy for policy in candidates if policy.remaining is not None]
    return min(known, key=lambda policy: policy.remaining or 0.0) if known else candidates[0]


def _wait_of(policy: _Policy) -> float:
    wait = policy.reset if policy.reset is not None else policy.window
    return -1.0 if wait is None else wait


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
    ietf = _ietf_policy(reader)
    remaining = reader.count("X-RateLimit-Remaining", get("x-ratelimit-remaining"))
    if remaining is None:
        remaining = (
            int(ietf.remaining)
            if ietf.remaining is not None
            else reader.count("RateLimit-Remaining", get("ratelimit-remaining"))
        )
    limit = reader.count("X-RateLimit-Limit", get("x-ratelimit-limit"))
    if limit is None:
        limit = int(ietf.limit) if ietf.limit is not None else reader.count("RateLimit-Limit", get("ratelimit-limit"))
    reset, reset_source = reader.first_reset(ietf)
    if reset is None and remaining == 0 and ietf.window is not None:
        reset, reset_source = ietf.window, "RateLimit-Policy"

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

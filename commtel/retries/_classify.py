"""Pure helpers deciding *whether* an outcome is retryable and *what the server asked*.

Everything is duck-typed: an HTTP status is read from ``.status_code`` (httpx, requests)
of a result, an exception, or an exception's ``.response``; headers from ``.headers``.
No HTTP library is imported.
"""

from __future__ import annotations

import functools
import math

from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from .._exceptions import RateLimitExceeded
from .._timing import wall
from ._config import RetryConfig


__all__ = ["Classifier", "retry_after_s", "status_of"]

# Class names (anywhere in the MRO) of connection failures in the stdlib, httpx, requests, aiohttp.
_CONNECTION_NAMES = frozenset(
    {
        "ConnectionError",
        "ConnectError",
        "NetworkError",
        "RemoteProtocolError",
        "ClientConnectionError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ClientOSError",
    }
)


def status_of(obj: object) -> int | None:
    """The HTTP status carried by a response, or an exception or its ``.response``.

    An exception's own ``.status`` counts too (aiohttp's ``ClientResponseError``, urllib's
    ``HTTPError``).
    """
    status = getattr(obj, "status_code", None)
    if status is None and isinstance(obj, BaseException):
        status = getattr(getattr(obj, "response", None), "status_code", None)
        if status is None:
            status = getattr(obj, "status", None)
    return status if isinstance(status, int) else None


def _header(obj: object, name: str) -> str | None:
    headers = getattr(obj, "headers", None)
    if headers is None and isinstance(obj, BaseException):
        headers = getattr(getattr(obj, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def retry_after_s(obj: object) -> float | None:
    """Seconds the server asked to wait, from a ``retry_after_s`` attribute or a ``Retry-After`` header.

    The header may hold delta-seconds or an HTTP-date. Unparsable, negative, NaN or
    infinite values give ``None``, so the caller backs off as if no hint had come
    (``Retry-After: -30`` must not mean "retry at once"); a date in the past is 0.
    """
    hint = getattr(obj, "retry_after_s", None)
    if isinstance(hint, int | float) and not isinstance(hint, bool):
        return _valid_delay(hint)
    raw = _header(obj, "Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return max(0.0, when.timestamp() - wall())
    return _valid_delay(value)


def _valid_delay(value: object) -> float | None:
    """*value* as seconds to wait if it is a finite number >= 0, else ``None`` (ignore the hint)."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _is_timeout(exc: BaseException) -> bool:
    return any("Timeout" in cls.__name__ for cls in type(exc).__mro__)


def _is_connection(exc: BaseException) -> bool:
    return any(cls.__name__ in _CONNECTION_NAMES for cls in type(exc).__mro__)


@functools.lru_cache(maxsize=64)
def _retried_statuses(codes: frozenset[int], *, server_error: bool, rate_limit: bool) -> frozenset[int]:
    """The statuses a config retries, one shared set per distinct config (a host's guard holds no copy)."""
    statuses = set(codes)
    if server_error:
        statuses.update(range(500, 600))
    if rate_limit:
        statuses.add(429)
    return frozenset(statuses)


class Classifier:
    """Compiled retry predicates of one :class:`RetryConfig`; returns a *reason* or ``None``.

    A reason is the metric label of a retry: ``"rate_limited"``, the HTTP status as text,
    the exception class name, or ``"result"``.
    """

    __slots__ = ("_config", "_on_exc", "_on_types", "_statuses", "checks_results")

    def __init__(self, config: RetryConfig) -> None:
        self._config = config
        on = config.on
        self._on_types: tuple[type[BaseException], ...] = on if isinstance(on, tuple) else ()
        self._on_exc: Callable[[BaseException], bool] | None = None if isinstance(on, tuple) else on
        self._statuses = _retried_statuses(
            config.retry_status_codes, server_error=config.retry_on_server_error, rate_limit=config.retry_on_rate_limit
        )
        #: Whether results must be inspected at all (keeps the success path short when not).
        self.checks_results = (
            config.retry_on_result is not None
            or bool(config.retry_status_codes)
            or (config.retry_on_server_error or config.retry_on_rate_limit)
        )

    def _status_reason(self, status: int | None) -> str | None:
        if status is None or status not in self._statuses:
            return None
        return "rate_limited" if status == 429 else str(status)

    def error(self, exc: BaseException) -> str | None:  # noqa: PLR0911 - one exit per rule reads best
        """The retry reason for *exc*, or ``None`` when it must not be retried."""
        config = self._config
        if not isinstance(exc, Exception):
            return None
        if isinstance(exc, RateLimitExceeded):
            return "rate_limited" if config.retry_on_rate_limit or isinstance(exc, self._on_types) else None
        if (self._on_types and isinstance(exc, self._on_types)) or (self._on_exc is not None and self._on_exc(exc)):
            return self._status_reason(status_of(exc)) or type(exc).__name__
        reason = self._status_reason(status_of(exc))
        if reason is not None:
            return reason
        if (config.retry_on_timeout and _is_timeout(exc)) or (config.retry_on_connection_error and _is_connection(exc)):
            return type(exc).__name__
        if config.retry_on_specific_errors:
            text = str(exc)
            if any(part in text for part in config.retry_on_specific_errors):
                return type(exc).__name__
        return None

    def result(self, value: Any) -> str | None:
        """The retry reason for a returned *value*, or ``None`` when it is accepted."""
        predicate = self._config.retry_on_result
        if predicate is not None and predicate(value):
            return self._status_reason(status_of(value)) or "result"
        status = getattr(value, "status_code", None)
        if status is None or not self._statuses:  # the common case: not an HTTP response
            return None
        return self._status_reason(status if isinstance(status, int) else None)

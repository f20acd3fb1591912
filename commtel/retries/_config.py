"""``RetryConfig``: every retry option, validated once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .. import _validation as check
from .._exceptions import ConfigurationError


__all__ = ["Jitter", "RetryConfig"]

#: ``"none"``: the exponential delay as is; ``"proportional"``: ± ``jitter_factor`` of it
#: (``jitter=True``); ``"full"``: uniform in [0, delay]; ``"equal"``: half the
#: delay plus uniform in [0, delay/2]; ``"decorrelated"``: uniform in
#: [``base_delay``, 3 x previous delay], capped (AWS architecture blog).
Jitter = Literal["none", "proportional", "full", "equal", "decorrelated"]
_JITTERS = ("none", "proportional", "full", "equal", "decorrelated")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    """How to retry: how often, how long to wait, and on what.

    An attempt is retried when its exception or result matches any of: *on* (exception
    types or a predicate), *retry_on_result*, *retry_status_codes*, the message substrings
    in *retry_on_specific_errors*, or one of the four on/off families (timeouts, connection
    errors, HTTP 5xx, HTTP 429 / :class:`~commtel.RateLimitedByServer`). HTTP statuses are read
    duck-typed from ``.status_code`` (httpx, requests) on results and on exceptions or their
    ``.response``, so no HTTP library is imported.

    Args:
        max_attempts: Attempts in total, the first included (1 = no retries).
        base_delay: Delay before the first retry, seconds.
        max_delay: Upper bound of one backoff delay, seconds.
        backoff_factor: Growth per retry.
        jitter: A :data:`Jitter` name, or ``True`` (= ``"proportional"``) / ``False`` (= ``"none"``).
        jitter_factor: Spread of ``"proportional"`` jitter (0.1 = ±10 %).
        on: Exception types (or a predicate on the exception) that are retried.
        retry_status_codes: HTTP statuses retried, on results and on exceptions.
        retry_on_result: Predicate on a returned value; true means "retry".
        retry_on_timeout: Retry timeouts (``TimeoutError`` and any ``*Timeout*`` class).
        retry_on_connection_error: Retry connection failures (``ConnectionError``, httpx's
            ``ConnectError``/``NetworkError``, aiohttp's ``ClientConnectionError`` …).
        retry_on_server_error: Retry HTTP 5xx.
        retry_on_rate_limit: Retry HTTP 429 and :class:`~commtel.RateLimitExceeded`.
        retry_on_specific_errors: Retry exceptions whose message contains one of these.
        deadline: Total time budget of the call, retries and waits included; no retry
            starts after it.
        respect_retry_after: Wait what the server asked (``Retry-After`` header, seconds or
            HTTP-date, or ``retry_after`` of the exception) instead of the backoff.
        max_retry_after: Cap on such a server-requested wait, seconds.

    .. versionadded:: 0.1.0
    """

    max_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0
    backoff_factor: float = 2.0
    jitter: Jitter | bool = True
    jitter_factor: float = 0.1
    on: tuple[type[BaseException], ...] | Callable[[BaseException], bool] = ()
    retry_status_codes: frozenset[int] = frozenset()
    retry_on_result: Callable[[Any], bool] | None = None
    retry_on_timeout: bool = True
    retry_on_connection_error: bool = True
    retry_on_server_error: bool = True
    retry_on_rate_limit: bool = True
    retry_on_specific_errors: tuple[str, ...] = ()
    deadline: float | None = None
    respect_retry_after: bool = True
    max_retry_after: float = 120.0
    _jitter_mode: str = field(init=False, repr=False, compare=False, default="proportional")

    def __post_init__(self) -> None:
        put = object.__setattr__
        owner = "RetryConfig"
        put(self, "on", check.exception_types(self.on, "on", owner=owner))
        put(self, "base_delay", check.duration(self.base_delay, "base_delay", owner=owner))
        put(self, "max_delay", check.duration(self.max_delay, "max_delay", owner=owner))
        put(self, "deadline", check.duration(self.deadline, "deadline", owner=owner, positive=True, optional=True))
        put(self, "max_retry_after", check.duration(self.max_retry_after, "max_retry_after", owner=owner))
        put(self, "retry_status_codes", check.status_codes(self.retry_status_codes, "retry_status_codes", owner=owner))
        put(self, "retry_on_specific_errors", tuple(self.retry_on_specific_errors))
        put(self, "max_attempts", check.whole(self.max_attempts, "max_attempts", owner=owner, hint="1 = no retries"))
        put(self, "backoff_factor", check.number(self.backoff_factor, "backoff_factor", owner=owner, minimum=1.0))
        put(self, "jitter_factor", check.fraction(self.jitter_factor, "jitter_factor", owner=owner))
        check.callable_(self.retry_on_result, "retry_on_result", owner=owner, optional=True)
        jitter: Any = self.jitter
        mode = "proportional" if jitter is True else "none" if jitter is False else jitter
        if not isinstance(mode, str) or mode not in _JITTERS:
            msg = f"RetryConfig: jitter must be a bool or one of {_JITTERS}, got {jitter!r}"
            raise ConfigurationError(msg)
        put(self, "_jitter_mode", mode)

    @property
    def jitter_mode(self) -> str:
        """The jitter as one of the :data:`Jitter` names."""
        return self._jitter_mode

    def merge(self, **overrides: Any) -> RetryConfig:
        """A copy with the given options replaced; ``None`` values are ignored.

        .. versionadded:: 0.1.0
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        return replace(self, **given) if given else self

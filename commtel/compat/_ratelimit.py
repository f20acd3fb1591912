"""The older rate-limiter APIs over :class:`commtel.RateLimiter`: one class for the three shapes.

``RateLimiter(max_calls, time_window)`` with ``await limiter.acquire()``;
``RateLimiter.for_platform("twitter")`` with ``can_proceed()`` / ``time_until_ready()``;
``RateLimiter(config)`` with ``is_allowed(key, endpoint, platform)`` / ``wait_time(...)`` /
``reset_limits(key)``. Each wraps a real :class:`commtel.RateLimiter` (its ``limiter``),
so decisions, Redis backends and telemetry are commtel's.
"""

from __future__ import annotations

import inspect
import threading

from collections.abc import Callable
from typing import Any, TypeVar, overload

from .. import _validation as check
from ..ratelimit import GlobalRateLimiter as _GlobalRateLimiter
from ..ratelimit import RateLimitBackend, RateLimitConfig, SlidingWindow
from ..ratelimit import RateLimiter as _RateLimiter
from ..ratelimit import get_rate_limiter as _get_rate_limiter
from ..ratelimit import rate_limited as _rate_limited


__all__ = ["GlobalRateLimiter", "RateLimiter", "get_rate_limiter", "rate_limited"]

_F = TypeVar("_F", bound=Callable[..., Any])


class RateLimiter:
    """A :class:`commtel.RateLimiter` under the older names.

    ``RateLimiter(max_calls, time_window)`` admits at most *max_calls* calls in any
    *time_window* seconds (an exact sliding window); ``RateLimiter(config)`` applies a
    :class:`~commtel.RateLimitConfig`.

    Args:
        max_calls: Calls allowed per window, or a :class:`~commtel.RateLimitConfig`.
        time_window: The window in seconds (with *max_calls* as a number).
        name: The ``limiter`` metric label.
        backend: Where state lives (default in memory; a ``redis://`` URL or a backend to share it).

    Attributes:
        limiter: The :class:`commtel.RateLimiter` doing the work.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("limiter", "max_calls", "time_window")

    @overload
    def __init__(
        self, max_calls: int, time_window: float, *, name: str = ..., backend: RateLimitBackend | str | None = ...
    ) -> None: ...

    @overload
    def __init__(
        self, max_calls: RateLimitConfig, /, *, name: str = ..., backend: RateLimitBackend | str | None = ...
    ) -> None: ...

    def __init__(
        self,
        max_calls: int | RateLimitConfig,
        time_window: float | None = None,
        *,
        name: str = "default",
        backend: RateLimitBackend | str | None = None,
    ) -> None:
        self.max_calls: int | None = None
        self.time_window: float | None = None
        if isinstance(max_calls, RateLimitConfig):
            self.limiter = _RateLimiter(max_calls, name=name, backend=backend)
            return
        if time_window is None:
            msg = "RateLimiter(max_calls, time_window) needs time_window in seconds"
            raise TypeError(msg)
        self.max_calls = check.whole(max_calls, "max_calls", owner="RateLimiter")
        self.time_window = check.duration(time_window, "time_window", owner="RateLimiter", positive=True)
        self.limiter = _RateLimiter(SlidingWindow(self.max_calls, self.time_window), name=name, backend=backend)

    @classmethod
    def wrap(cls, limiter: _RateLimiter) -> RateLimiter:
        """The older API over an existing :class:`commtel.RateLimiter`.

        .. versionadded:: 0.1.0
        """
        self = cls.__new__(cls)
        self.limiter = limiter
        self.max_calls = None
        self.time_window = None
        return self

    @classmethod
    def for_platform(cls, platform: str, *, backend: RateLimitBackend | str | None = None) -> RateLimiter:
        """A limiter with the published limits of *platform* (``"twitter"``: 300 requests per 15 min …).

        .. versionadded:: 0.1.0
        """
        return cls.wrap(_RateLimiter.for_platform(platform, backend=backend))

    def __repr__(self) -> str:
        return f"compat.{self.limiter!r}"

    async def acquire(self, key: str = "default", *, endpoint: str | None = None, platform: str | None = None) -> None:
        """Wait until a call for *key* is admitted, then take it.

        .. versionadded:: 0.1.0
        """
        await self.limiter.aacquire(key, endpoint=endpoint, platform=platform)

    def can_proceed(self, key: str = "default") -> bool:
        """Take one call for *key* if admitted now; ``True`` when taken.

        .. versionadded:: 0.1.0
        """
        return self.limiter.try_acquire(key).allowed

    def time_until_ready(self, key: str = "default") -> float:
        """Seconds until a call for *key* would be admitted (``0.0``: now); nothing is taken.

        .. versionadded:: 0.1.0
        """
        return self.limiter.time_until_ready(key)

    def is_allowed(
        self, key: str, endpoint: str | None = None, platform: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Take one call for *key* if admitted; ``(allowed, info)``.

        *info* holds ``allowed``, ``retry_after_s``, ``remaining``, ``limit`` and ``reset_s``.

        .. versionadded:: 0.1.0
        """
        decision = self.limiter.try_acquire(key, endpoint=endpoint, platform=platform)
        return decision.allowed, decision.as_info()

    def wait_time(self, key: str, endpoint: str | None = None, platform: str | None = None) -> float:
        """Seconds until one more call for *key* would be admitted; nothing is taken.

        .. versionadded:: 0.1.0
        """
        return self.limiter.time_until_ready(key, endpoint=endpoint, platform=platform)

    def reset_limits(self, key: str) -> None:
        """Forget everything about *key*.

        .. versionadded:: 0.1.0
        """
        self.limiter.reset(key)


class GlobalRateLimiter(_GlobalRateLimiter):
    """:class:`commtel.GlobalRateLimiter` that also takes the older limiters and has ``can_proceed``.

    .. versionadded:: 0.1.0
    """

    __slots__ = ()

    def add_limiter(self, platform: str, limiter: _RateLimiter | RateLimiter) -> None:
        """Use *limiter* for *platform*.

        .. versionadded:: 0.1.0
        """
        super().add_limiter(platform, limiter.limiter if isinstance(limiter, RateLimiter) else limiter)

    def can_proceed(self, platform: str, key: str = "default") -> bool:
        """Take one call on *platform* if admitted now; ``True`` when taken.

        .. versionadded:: 0.1.0
        """
        return self.try_acquire(platform, key).allowed


_wrapped_lock = threading.Lock()
_wrapped: RateLimiter | None = None  # the older API over the current process-wide limiter


def get_rate_limiter(config: RateLimitConfig | None = None) -> RateLimiter:
    """The process-wide limiter (see :func:`commtel.ratelimit.get_rate_limiter`) under the older API.

    .. versionadded:: 0.1.0
    """
    global _wrapped  # noqa: PLW0603
    limiter = _get_rate_limiter(config)
    with _wrapped_lock:
        if _wrapped is None or _wrapped.limiter is not limiter:
            _wrapped = RateLimiter.wrap(limiter)
        return _wrapped


def _key_from_arguments(key_func: Callable[..., Any]) -> Callable[..., str]:
    """Call *key_func* with the decorated call's arguments that its parameters name.

    ``key_func=lambda user_id: f"user_{user_id}"`` on ``create_post(user_id, content)``
    gets ``user_id`` whether it was passed by position or by keyword; a *key_func*
    taking ``*args``/``**kwargs`` gets every argument.
    """
    try:
        params = list(inspect.signature(key_func).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: hand it everything
        params = []
    variadic = not params or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)

    def key(*args: Any, **kwargs: Any) -> str:
        if variadic:
            return str(key_func(*args, **kwargs))
        positional = list(args)
        call_args: list[Any] = []
        call_kwargs: dict[str, Any] = {}
        for param in params:
            by_name = param.kind is not param.POSITIONAL_ONLY
            if by_name and param.name in kwargs:
                call_kwargs[param.name] = kwargs[param.name]
            elif positional and by_name and call_kwargs:  # after a keyword, stay with keywords
                call_kwargs[param.name] = positional.pop(0)
            elif positional:
                call_args.append(positional.pop(0))
        return str(key_func(*call_args, **call_kwargs))

    return key


def rate_limited(
    config: RateLimitConfig | RateLimiter | _RateLimiter | None = None,
    key_func: Callable[..., Any] | None = None,
    endpoint: str | None = None,
    platform: str | None = None,
    *,
    key: str = "default",
    timeout: float | None = None,
) -> Callable[[_F], _F]:
    """Acquire from a limiter before each call of a sync or async function (waiting as needed).

    Args:
        config: A :class:`~commtel.RateLimitConfig` to build a limiter from, a limiter, or
            ``None`` for :func:`get_rate_limiter`.
        key_func: Gets the key from the call's arguments it names, e.g.
            ``lambda user_id: f"user_{user_id}"``.
        endpoint: Endpoint for the config's endpoint limits.
        platform: Platform for the config's platform limits.
        key: The key when there is no *key_func*.
        timeout: Longest wait per call (``None``: as long as needed).

    Raises:
        RateLimitExceeded: A call could not be admitted within *timeout*.

    .. versionadded:: 0.1.0
    """
    limiter = config.limiter if isinstance(config, RateLimiter) else config
    check.callable_(key_func, "key_func", owner="rate_limited", optional=True)
    return _rate_limited(
        limiter,
        None if key_func is None else _key_from_arguments(key_func),
        endpoint,
        platform,
        key=key,
        timeout=timeout,
    )

"""``@rate_limited``: acquire from a limiter before each call (functions, methods, coroutines)."""

from __future__ import annotations

import functools
import inspect
import re

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import wrapt

from .. import _validation as check
from ._config import RateLimitConfig
from ._global import get_rate_limiter
from ._limiter import RateLimiter


__all__ = ["extract_endpoint_from_url", "rate_limited"]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")
# Path segments that are not resource names: versions, "api", numbers, UUIDs, hex ids.
_NOT_RESOURCE = re.compile(
    r"api|v\d+(\.\d+)*|\d+|[0-9a-f]{8,}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE
)


class _Acquire:
    """What a decorated call acquires: limiter, key (fixed or from the arguments), cost, timeout."""

    __slots__ = ("cost", "endpoint", "key", "key_func", "limiter", "platform", "timeout")

    def __init__(
        self,
        limiter: RateLimiter,
        key: str,
        key_func: Callable[..., str] | None,
        *,
        cost: int,
        timeout: float | None,
        endpoint: str | None,
        platform: str | None,
    ) -> None:
        self.limiter = limiter
        self.key = check.text(key, "key", owner="rate_limited")
        self.key_func = key_func
        self.cost = check.whole(cost, "cost", owner="rate_limited")
        self.timeout = check.duration(timeout, "timeout", owner="rate_limited", optional=True)
        self.endpoint = endpoint
        self.platform = platform

    def key_for(self, args: Any, kwargs: Any) -> str:
        return self.key if self.key_func is None else str(self.key_func(*args, **kwargs))


def _call_sync(spec: _Acquire, fn: Callable[..., _T], instance: object, args: Any, kwargs: Any) -> _T:  # noqa: ARG001 - wrapt's signature; fn is already bound
    spec.limiter.acquire(
        spec.key_for(args, kwargs), spec.cost, timeout=spec.timeout, endpoint=spec.endpoint, platform=spec.platform
    )
    return fn(*args, **kwargs)


async def _call_async(spec: _Acquire, fn: Callable[..., Awaitable[_T]], instance: object, args: Any, kwargs: Any) -> _T:  # noqa: ARG001 - wrapt's signature; fn is already bound
    await spec.limiter.aacquire(
        spec.key_for(args, kwargs), spec.cost, timeout=spec.timeout, endpoint=spec.endpoint, platform=spec.platform
    )
    return await fn(*args, **kwargs)


def rate_limited(
    config: RateLimitConfig | RateLimiter | None = None,
    key_func: Callable[..., str] | None = None,
    endpoint: str | None = None,
    platform: str | None = None,
    *,
    key: str = "default",
    cost: int = 1,
    timeout: float | None = None,
) -> Callable[[_F], _F]:
    """Decorate a function, method or coroutine so each call first acquires from a limiter.

    Sync or async is chosen once, at decoration. A call that cannot be admitted
    within *timeout* raises :class:`~commtel.RateLimitExceeded` without running.

    Args:
        config: The limiter to use, or a :class:`RateLimitConfig` to build one from
            (``None``: the process-wide :func:`get_rate_limiter`).
        key_func: Called with the decorated call's arguments (without ``self``) to get
            the key, e.g. ``lambda user_id, *_: f"user_{user_id}"``.
        endpoint: Endpoint for the config's endpoint budgets.
        platform: Platform for the config's platform budgets and the metric label.
        key: The key when there is no *key_func*.
        cost: Units each call takes.
        timeout: Longest wait per call (``None``: as long as needed; ``0``: never wait).

    Returns:
        The decorator.

    .. versionadded:: 0.1.0
    """
    check.instance(config, "config", (RateLimitConfig, RateLimiter), owner="rate_limited", optional=True)
    check.callable_(key_func, "key_func", owner="rate_limited", optional=True)
    if isinstance(config, RateLimiter):
        limiter = config
    elif isinstance(config, RateLimitConfig):
        limiter = RateLimiter(config)
    else:
        limiter = get_rate_limiter()
    spec = _Acquire(limiter, key, key_func, cost=cost, timeout=timeout, endpoint=endpoint, platform=platform)

    def decorate(fn: _F) -> _F:
        driver = _call_async if inspect.iscoroutinefunction(fn) else _call_sync
        return wrapt.FunctionWrapper(fn, functools.partial(driver, spec))  # type: ignore[return-value]

    return decorate


def extract_endpoint_from_url(url: str) -> str:
    """The endpoint name of *url* for endpoint limits: its last resource segment, lowercase.

    Versions, ``api``, numbers, UUIDs and hex ids are skipped, and an extension is
    dropped: ``https://mastodon.social/api/v1/accounts/123/statuses`` gives
    ``"statuses"``, ``/api/v2/media/9f8e7d6c5b4a`` gives ``"media"``. ``""`` if none.

    .. versionadded:: 0.1.0
    """
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    for segment in reversed(path.split("/")):
        name = segment.split(".", 1)[0]
        if name and not _NOT_RESOURCE.fullmatch(name):
            return name.lower()
    return ""

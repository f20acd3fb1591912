"""Declarative rate-limit configuration: :class:`RateLimitConfig`, ``from_env`` and platform presets.

A config describes, per key, minute/hour/day quotas plus a burst, and overrides
per platform, per endpoint and per platform-endpoint. :meth:`RateLimitConfig.scopes`
resolves the limits one request must satisfy:

* the *platform scope* (one budget per key and platform): the global quotas,
  overridden timeframe by timeframe by ``platform_limits[platform]``, plus a token
  bucket of ``max_burst`` refilled at the per-minute rate;
* the *endpoint scope* (one budget per key, platform and endpoint), only when
  ``endpoint_limits[endpoint]`` or ``platform_endpoint_limits[platform][endpoint]``
  exists (the latter overriding the former timeframe by timeframe).

A request is admitted only if both scopes admit it. Platforms and endpoints without
their own limits share the global budget. Names are matched case-insensitively.
"""

from __future__ import annotations

import logging
import os

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .. import _validation as check
from .._exceptions import ConfigurationError
from ._core import Limit, Quota, SlidingWindow, TokenBucket, compile_quota


__all__ = ["PRESETS", "TIMEFRAMES", "RateLimitConfig", "preset_limits"]

_log = logging.getLogger("commtel.ratelimit")

#: Timeframe names accepted in limit dicts and environment variables, in seconds.
TIMEFRAMES: Mapping[str, float] = MappingProxyType({"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0})

Limits = dict[str, int]


def _check_limits(where: str, limits: object) -> Limits:
    if not isinstance(limits, Mapping):
        msg = f"{where} must be a dict of timeframe -> limit, got {limits!r}"
        raise ConfigurationError(msg)
    checked: Limits = {}
    for timeframe, value in limits.items():
        name = str(timeframe).lower()
        if name not in TIMEFRAMES:
            msg = f"{where}[{timeframe!r}]: unknown timeframe; use one of {', '.join(TIMEFRAMES)}"
            raise ConfigurationError(msg)
        checked[name] = check.whole(value, f"{where}[{timeframe!r}]", owner="RateLimitConfig")
    return checked


def _mapping(value: object, name: str) -> Mapping[object, object]:
    return check.instance(value, name, Mapping, owner="RateLimitConfig", what="a dict")  # type: ignore[no-any-return]


@dataclass
class RateLimitConfig:
    """Per-key quotas with per-platform, per-endpoint and per-platform-endpoint overrides.

    Limit dicts map a timeframe (``second``, ``minute``, ``hour``, ``day``) to the
    number of requests allowed in any sliding window of that length, e.g.
    ``{"minute": 10, "hour": 100}``. See the module docstring for how they combine.

    Args:
        requests_per_minute: Global per-key requests in any 60 s.
        requests_per_hour: Global per-key requests in any hour.
        requests_per_day: Global per-key requests in any day.
        max_burst: Requests admitted back to back before the per-minute rate paces them.
        endpoint_limits: ``{endpoint: limits}``, a separate budget per endpoint.
        platform_limits: ``{platform: limits}``, overriding the global quotas for that platform.
        platform_endpoint_limits: ``{platform: {endpoint: limits}}``, overriding ``endpoint_limits``.

    Raises:
        ConfigurationError: A rate is zero or negative, a timeframe unknown, or ``max_burst``
            larger than a per-minute quota could ever allow.

    .. versionadded:: 0.1.0
    """

    requests_per_minute: int = 60
    requests_per_hour: int = 1000
    requests_per_day: int = 10000
    max_burst: int = 10
    endpoint_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    platform_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    platform_endpoint_limits: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "requests_per_hour", "requests_per_day", "max_burst"):
            setattr(self, name, check.whole(getattr(self, name), name, owner="RateLimitConfig"))
        self.endpoint_limits = {
            str(k).lower(): _check_limits(f"endpoint_limits[{k!r}]", v)
            for k, v in _mapping(self.endpoint_limits, "endpoint_limits").items()
        }
        self.platform_limits = {
            str(k).lower(): _check_limits(f"platform_limits[{k!r}]", v)
            for k, v in _mapping(self.platform_limits, "platform_limits").items()
        }
        nested: dict[str, dict[str, Limits]] = {}
        given = _mapping(self.platform_endpoint_limits, "platform_endpoint_limits")
        for platform, endpoints in given.items():
            if not isinstance(endpoints, Mapping):
                msg = f"platform_endpoint_limits[{platform!r}] must be a dict of endpoint -> limits"
                raise ConfigurationError(msg)
            nested[str(platform).lower()] = {
                str(e).lower(): _check_limits(f"platform_endpoint_limits[{platform!r}][{e!r}]", v)
                for e, v in endpoints.items()
            }
        self.platform_endpoint_limits = nested

    def _global(self) -> Limits:
        return {"minute": self.requests_per_minute, "hour": self.requests_per_hour, "day": self.requests_per_day}

    def scope_names(self, platform: str | None, endpoint: str | None) -> tuple[str, str | None]:
        """Names of the platform scope and (if the endpoint has limits) the endpoint scope."""
        p = (platform or "").lower()
        e = (endpoint or "").lower()
        platform_scope = f"p:{p}" if p in self.platform_limits else "p:"
        if e and (e in self.endpoint_limits or e in self.platform_endpoint_limits.get(p, {})):
            return platform_scope, f"e:{p}:{e}"
        return platform_scope, None

    def scopes(self, platform: str | None = None, endpoint: str | None = None) -> list[tuple[str, Quota]]:
        """The named quotas a request to *platform*/*endpoint* must satisfy (see module docstring).

        .. versionadded:: 0.1.0
        """
        p = (platform or "").lower()
        e = (endpoint or "").lower()
        platform_scope, endpoint_scope = self.scope_names(p, e)
        merged = {**self._global(), **self.platform_limits.get(p, {})}
        limits: list[Limit] = [SlidingWindow(n, TIMEFRAMES[tf]) for tf, n in merged.items()]
        per_minute = merged.get("minute", self.requests_per_minute)
        limits.append(TokenBucket(per_minute / 60.0, min(self.max_burst, per_minute)))
        resolved = [(platform_scope, compile_quota(limits))]
        if endpoint_scope is not None:
            ep = {**self.endpoint_limits.get(e, {}), **self.platform_endpoint_limits.get(p, {}).get(e, {})}
            resolved.append((endpoint_scope, compile_quota([SlidingWindow(n, TIMEFRAMES[tf]) for tf, n in ep.items()])))
        return resolved

    @classmethod
    def from_env(cls, env_prefix: str = "RATE_LIMIT", environ: Mapping[str, str] | None = None) -> RateLimitConfig:
        """Read a config from environment variables.

        Understood (with the default prefix): ``RATE_LIMIT_REQUESTS_PER_MINUTE``,
        ``_PER_HOUR``, ``_PER_DAY``, ``RATE_LIMIT_MAX_BURST``,
        ``RATE_LIMIT_ENDPOINT_<endpoint>_<timeframe>``, ``RATE_LIMIT_<platform>_<timeframe>``
        and ``RATE_LIMIT_<platform>_ENDPOINT_<endpoint>_<timeframe>`` (timeframe: SECOND,
        MINUTE, HOUR or DAY; names may contain underscores). Other variables with the
        prefix are ignored.

        Args:
            env_prefix: Prefix of the variables.
            environ: Mapping to read instead of ``os.environ``.

        Returns:
            The configuration (defaults where a variable is absent).

        Raises:
            ConfigurationError: A value is not a positive integer; the message names the variable.

        .. versionadded:: 0.1.0
        """
        env = os.environ if environ is None else environ
        prefix = env_prefix.upper().rstrip("_") + "_"
        kwargs: dict[str, int] = {}
        for field_name in ("requests_per_minute", "requests_per_hour", "requests_per_day", "max_burst"):
            name = prefix + field_name.upper()
            if name in env:
                kwargs[field_name] = _env_int(name, env[name])
        endpoints: dict[str, dict[str, int]] = {}
        platforms: dict[str, dict[str, int]] = {}
        platform_endpoints: dict[str, dict[str, dict[str, int]]] = {}
        for name, value in env.items():
            parsed = _env_limit(prefix, name, value)
            if parsed is None:
                continue
            platform, endpoint, timeframe, limit = parsed
            if platform and endpoint:
                platform_endpoints.setdefault(platform, {}).setdefault(endpoint, {})[timeframe] = limit
            elif endpoint:
                endpoints.setdefault(endpoint, {})[timeframe] = limit
            else:
                platforms.setdefault(platform, {})[timeframe] = limit
        return cls(
            **kwargs,
            endpoint_limits=endpoints,
            platform_limits=platforms,
            platform_endpoint_limits=platform_endpoints,
        )


def _env_int(name: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if number < 1:
        msg = f"environment variable {name} must be a positive integer, got {value!r}"
        raise ConfigurationError(msg)
    return number


def _env_limit(prefix: str, name: str, value: str) -> tuple[str, str, str, int] | None:
    """``(platform, endpoint, timeframe, limit)`` of one limit variable, ``None`` if it is not one."""
    upper = name.upper()
    if not upper.startswith(prefix) or upper[len(prefix) :].startswith(("REQUESTS_PER_", "MAX_BURST")):
        return None
    rest, _, timeframe = upper[len(prefix) :].rpartition("_")
    if timeframe.lower() not in TIMEFRAMES or not rest:
        _log.debug("ignoring environment variable %s (no timeframe suffix)", name)
        return None
    limit = _env_int(name, value)
    if rest.startswith("ENDPOINT_"):
        return "", rest.removeprefix("ENDPOINT_").lower(), timeframe.lower(), limit
    platform, _, endpoint = rest.partition("_ENDPOINT_")
    return platform.lower(), endpoint.lower(), timeframe.lower(), limit


# Published platform limits, per key (account, token or bot). Each entry names its source.
PRESETS: Mapping[str, tuple[Limit, ...]] = MappingProxyType(
    {
        # X/Twitter API v2 counts requests in 15-minute windows; 300 per 15 min is the app-level
        # limit of most read endpoints (https://developer.x.com/en/docs/x-api/rate-limits).
        "twitter": (SlidingWindow(300, 900.0),),
        "x": (SlidingWindow(300, 900.0),),
        # Discord: per-route buckets such as 5 messages / 5 s per channel, and a global
        # 50 requests/s per bot (https://discord.com/developers/docs/topics/rate-limits).
        "discord": (SlidingWindow(5, 5.0), SlidingWindow(50, 1.0)),
        # Slack chat.postMessage: about 1 message per second per channel, short bursts tolerated
        # (https://api.slack.com/apis/rate-limits); the burst of 3 is our conservative choice.
        "slack": (TokenBucket(1.0, 3),),
        # Mastodon: 300 requests per 5 minutes per account
        # (https://docs.joinmastodon.org/api/rate-limits/).
        "mastodon": (SlidingWindow(300, 300.0),),
        # GitHub REST: 5,000 requests per hour per user token; secondary limit of 900 points
        # per minute for REST (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
        "github": (SlidingWindow(900, 60.0), SlidingWindow(5000, 3600.0)),
        # Telegram Bot API: no more than 30 messages per second in bulk
        # (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
        "telegram": (SlidingWindow(30, 1.0),),
        # Reddit Data API: 100 queries per minute per OAuth client, averaged over 10 minutes
        # (https://support.reddithelp.com/hc/en-us/articles/16160319875092-Reddit-Data-API-Wiki).
        "reddit": (SlidingWindow(1000, 600.0),),
        # Generic SMTP relay: 1 message per second.
        "email": (SlidingWindow(60, 60.0),),
        # Gmail (consumer) SMTP: 500 recipients per rolling 24 hours
        # (https://support.google.com/mail/answer/22839).
        "gmail": (SlidingWindow(500, 86400.0),),
        # Google Workspace Gmail: 2,000 messages per rolling 24 hours
        # (https://support.google.com/a/answer/166852).
        "gmail-workspace": (SlidingWindow(2000, 86400.0),),
        # Amazon SES sandbox: 1 message per second and 200 per 24 hours
        # (https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas.html).
        "ses-sandbox": (TokenBucket(1.0, 1), SlidingWindow(200, 86400.0)),
    }
)


def preset_limits(platform: str) -> tuple[Limit, ...]:
    """The preset limits of *platform* (case-insensitive; see :data:`PRESETS`).

    Raises:
        ConfigurationError: Unknown platform; the message lists the known ones.

    .. versionadded:: 0.1.0
    """
    found = PRESETS.get(platform.lower())
    if found is None:
        msg = f"unknown rate-limit preset platform={platform!r}; known: {', '.join(sorted(PRESETS))}"
        raise ConfigurationError(msg)
    return found

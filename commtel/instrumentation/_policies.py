"""Resilience policies per host or platform: from code, a TOML file or the environment.

A :class:`HostPolicy` says how calls to one host or platform are guarded: rate limiter,
retry, circuit breaker, per-attempt timeout. :class:`HostPolicies` maps hosts and
platforms to policies, with a default for everything else::

    [default]                       # every host without an entry of its own
    timeout_s = 10
    retry = { max_attempts = 3, base_delay = 0.2 }
    breaker = { failure_threshold = 5, recovery_timeout = 30 }

    [platforms.twitter]
    rate_limit = { rate = 300, period = 900 }

    [hosts."api.twitter.com"]       # exact host, or "*.example.com"
    platform = "twitter"            # inherits platforms.twitter, then default

A host's fields override its platform's, which override the default's; ``false``
switches a component off. Every value is validated when loaded and a bad one raises
:class:`~commtel.ConfigurationError` naming the field (``hosts."api.x.com".retry.max_attempts``).

Stateful parts are made per *scope* (a configured host, a platform, or each
unconfigured host): every call to ``api.twitter.com`` shares one breaker and one
limiter, and a broken host does not open the breaker of another. A limiter or
breaker *object* given in code is shared as is by every scope that uses it.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from .._durations import seconds
from .._exceptions import ConfigurationError
from ..retries._config import RetryConfig
from ._guard import Guard


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


__all__ = ["ENV_POLICIES", "ENV_POLICIES_FILE", "IDEMPOTENT_METHODS", "HostPolicies", "HostPolicy", "resolve_policy"]

#: Environment variable naming a TOML policy file.
ENV_POLICIES_FILE = "COMMTEL_POLICIES_FILE"
#: Environment variable holding TOML policy text itself (applied over the file).
ENV_POLICIES = "COMMTEL_POLICIES"
#: HTTP methods retried by default: safe to send twice.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

_UNSET: Any = object()
_Component = Literal["retry", "breaker", "rate_limit"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostPolicy:
    """How calls to one host or platform are guarded.

    Each of *retry*, *breaker* and *rate_limit* takes a configuration (a mapping of
    the component's options, or a :class:`~commtel.RetryConfig` for retry) from which
    every scope makes its own instance, an instance shared as is, or ``None``/``False``
    for none. Fields left unset inherit from the policy this one is layered on.

    Args:
        platform: The ``platform`` label of metrics and spans (default: the host name,
            or the platform the policy was looked up by).
        retry: Retry configuration; default ``RetryConfig()`` (3 attempts).
        breaker: Circuit breaker options or instance; default: a breaker with default options.
        rate_limit: Rate limiter options or instance; default none.
        timeout_s: Per-attempt timeout in seconds (HTTP: replaces the client's; async
            methods: ``asyncio.wait_for``); default none.
        retry_methods: HTTP methods that are retried (``"*"`` for all); default the
            idempotent ones, so a POST is never sent twice unless you say so.

    .. versionadded:: 0.1.0
    """

    platform: str | None = _UNSET
    retry: Any = _UNSET
    breaker: Any = _UNSET
    rate_limit: Any = _UNSET
    timeout_s: float | timedelta | None = _UNSET
    retry_methods: Iterable[str] = _UNSET

    def __post_init__(self) -> None:
        _validate(self, "policy")

    def over(self, base: HostPolicy) -> HostPolicy:
        """This policy's set fields layered over *base*'s.

        .. versionadded:: 0.1.0
        """
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not _UNSET}
        return replace(base, **given) if given else base

    def guard(self, operation: str, platform: str | None = None) -> Guard:
        """A :class:`~commtel.Guard` for *operation* with this policy's components (new instances).

        .. versionadded:: 0.1.0
        """
        return _standalone_scope(self.over(_DEFAULT), platform or self.platform_name(operation)).guard(operation)

    def platform_name(self, fallback: str) -> str:
        """The platform label: the configured one, else *fallback*."""
        value = self.platform
        return fallback if value is _UNSET or value is None else value

    def __repr__(self) -> str:
        given = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if getattr(self, f.name) is not _UNSET
        )
        return f"HostPolicy({given})"


def _validate(policy: HostPolicy, where: str) -> None:
    put = object.__setattr__
    platform: object = policy.platform
    if platform is not _UNSET and platform is not None and not isinstance(platform, str):
        msg = f"{where}.platform must be a string, got {platform!r}"
        raise ConfigurationError(msg)
    timeout: object = policy.timeout_s
    if timeout is not _UNSET:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float | timedelta | None):
            msg = f"{where}.timeout_s must be a number of seconds, got {timeout!r}"
            raise ConfigurationError(msg)
        put(policy, "timeout_s", _prefixed(where, "timeout_s", seconds, policy.timeout_s, "timeout_s"))
    if policy.retry_methods is not _UNSET:
        methods = [policy.retry_methods] if isinstance(policy.retry_methods, str) else policy.retry_methods
        if not all(isinstance(m, str) for m in methods):
            msg = f"{where}.retry_methods must be a list of HTTP method names or '*', got {policy.retry_methods!r}"
            raise ConfigurationError(msg)
        put(policy, "retry_methods", frozenset(m.upper() for m in methods))
    for name in ("retry", "breaker", "rate_limit"):
        value = getattr(policy, name)
        if value is False:
            put(policy, name, None)
        elif name == "retry" and isinstance(value, Mapping):
            put(policy, name, _prefixed(where, name, _retry_config, value))
        elif isinstance(value, Mapping):
            _prefixed(where, name, _check_component, name, value)  # fail now, not on the first call
            put(policy, name, dict(value))


def _retry_config(options: Mapping[str, Any]) -> RetryConfig:
    return RetryConfig(**options)


def _prefixed(where: str, name: str, fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)``; configuration errors come back naming ``where.name``."""
    try:
        return fn(*args)
    except TypeError as exc:
        # dataclass/constructor signature errors: "unexpected keyword argument 'x'"
        detail = str(exc).split(")", 1)[-1].strip() or str(exc)
        msg = f"{where}.{name}: {detail}"
        raise ConfigurationError(msg) from None
    except (ConfigurationError, ValueError) as exc:
        msg = f"{where}.{name}: {exc}"
        raise ConfigurationError(msg) from None


def _limits_from(options: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """TokenBucket/SlidingWindow objects from the mapping form, and the remaining limiter options."""
    from ..ratelimit._config import TIMEFRAMES, preset_limits
    from ..ratelimit._core import SlidingWindow, TokenBucket

    rest = dict(options)
    limits: list[Any] = []
    if "preset" in rest:
        limits.extend(preset_limits(str(rest.pop("preset"))))
    if "rate" in rest:
        rate = rest.pop("rate")
        limits.append(
            TokenBucket(rate, rest.pop("burst", max(1, int(rate)) if isinstance(rate, int | float) else rate))
        )
    if "limit" in rest or "window_s" in rest:
        limits.append(SlidingWindow(rest.pop("limit", None), rest.pop("window_s", None)))
    for timeframe, length in TIMEFRAMES.items():
        per = rest.pop(f"per_{timeframe}", None)
        if per is not None:
            limits.append(SlidingWindow(per, length))
    limits.extend(SlidingWindow(**window) for window in rest.pop("windows", ()))
    if not limits:
        msg = (
            "needs limits: rate (+ burst), limit + window_s, per_second/per_minute/per_hour/per_day, "
            "windows = [{limit, window_s}], or preset"
        )
        raise ConfigurationError(msg)
    unknown = sorted(set(rest) - {"max_server_wait_s", "burst"})
    if unknown or "burst" in rest:
        msg = f"unknown option(s) {unknown or ['burst (only with rate)']}"
        raise ConfigurationError(msg)
    return limits, rest


def _check_component(kind: _Component, options: Mapping[str, Any]) -> None:
    """Validate *options* without building anything that would announce itself (metrics, events)."""
    if kind == "rate_limit":
        _limits_from(options)
        return
    from ..breaker._breaker import CircuitBreaker

    CircuitBreaker.check_options(**options)


def _make_component(kind: _Component, name: str, options: Mapping[str, Any]) -> Any:
    """A breaker or limiter named *name* from its *options* (the TOML/mapping form)."""
    if kind == "breaker":
        from ..breaker._breaker import CircuitBreaker

        return CircuitBreaker(name, **options)
    from ..ratelimit._limiter import RateLimiter

    limits, rest = _limits_from(options)
    return RateLimiter(*limits, name=name, platform=name, **rest)


# commtel's defaults, under every configured policy.
_DEFAULT = HostPolicy(
    platform=None, retry=RetryConfig(), breaker={}, rate_limit=None, timeout_s=None, retry_methods=IDEMPOTENT_METHODS
)


class _Scope:
    """The live state of one scope (a host, or a platform): its breaker, limiter and guards."""

    __slots__ = ("_guards", "_lock", "breaker", "limiter", "platform", "policy", "retry_methods")

    def __init__(self, policy: HostPolicy, platform: str, breaker: Any, limiter: Any) -> None:
        self.policy = policy
        self.platform = platform
        self.breaker = breaker
        self.limiter = limiter
        methods = policy.retry_methods
        self.retry_methods: frozenset[str] | None = None if "*" in methods else frozenset(methods)
        self._guards: dict[tuple[str, bool], Guard] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"_Scope(platform={self.platform!r}, breaker={self.breaker!r}, limiter={self.limiter!r})"

    def guard(self, operation: str, *, http_method: str | None = None) -> Guard:
        """The (cached) guard of *operation*; an HTTP guard returns the last response when retries run out."""
        retried = http_method is None or self.retry_methods is None or http_method in self.retry_methods
        key = (operation, retried)
        found = self._guards.get(key)
        if found is None:
            with self._lock:
                found = self._guards.get(key)
                if found is None:
                    policy = self.policy
                    found = self._guards[key] = Guard(
                        operation,
                        platform=self.platform,
                        retry=policy.retry if retried else None,
                        breaker=self.breaker,
                        limiter=self.limiter,
                        timeout_s=policy.timeout_s,  # type: ignore[arg-type]
                        exhausted_result="return" if http_method is not None else "raise",
                    )
        return found


def _instance(kind: _Component, name: str, value: Any) -> Any:
    if value is None or value is _UNSET:
        return None
    if isinstance(value, Mapping):
        return _make_component(kind, name, value)
    return value


def _standalone_scope(policy: HostPolicy, name: str) -> _Scope:
    """A scope of its own for *policy*, with fresh component instances named *name*."""
    return _Scope(
        policy,
        policy.platform_name(name),
        _instance("breaker", name, policy.breaker),
        _instance("rate_limit", name, policy.rate_limit),
    )


@dataclass(frozen=True, slots=True)
class HostPolicies:
    """Policies by host and by platform, with a default; resolves a host to its live scope.

    A breaker or limiter lives where it is configured: one defined for a platform is
    shared by every host of that platform, one defined for a host entry by the hosts
    it matches, and one from the default policy is made per host.

    Args:
        default: The policy of every host and platform without one of its own,
            layered over commtel's defaults (retry 3 attempts, a breaker, no limiter).
        hosts: A policy per host name; ``"*.example.com"`` patterns match subdomains.
        platforms: A policy per platform name; a host policy names its platform.

    .. versionadded:: 0.1.0
    """

    default: HostPolicy = field(default_factory=HostPolicy)
    hosts: Mapping[str, HostPolicy] = field(default_factory=dict)
    platforms: Mapping[str, HostPolicy] = field(default_factory=dict)
    _scopes: dict[str, _Scope] = field(default_factory=dict, init=False, repr=False, compare=False)
    _instances: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False, compare=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "policies") -> HostPolicies:
        """Build from the TOML-shaped mapping (``default``, ``hosts``, ``platforms`` tables).

        Raises:
            ConfigurationError: Unknown keys or invalid values, naming the field.

        .. versionadded:: 0.1.0
        """
        unknown = set(data) - {"default", "hosts", "platforms"}
        if unknown:
            msg = f"{source}: unknown section(s) {sorted(unknown)}; expected default, hosts, platforms"
            raise ConfigurationError(msg)
        default = _policy_from(data.get("default", {}), f"{source}: default")
        tables: dict[str, dict[str, HostPolicy]] = {}
        for section in ("hosts", "platforms"):
            entries = data.get(section, {})
            if not isinstance(entries, Mapping):
                msg = f"{source}: {section} must be a table of policies, got {entries!r}"
                raise ConfigurationError(msg)
            tables[section] = {
                str(key).lower() if section == "hosts" else str(key): _policy_from(
                    value, f'{source}: {section}."{key}"'
                )
                for key, value in entries.items()
            }
        return cls(default=default, hosts=tables["hosts"], platforms=tables["platforms"])

    @classmethod
    def from_toml(cls, path: str | Path) -> HostPolicies:
        """Load a TOML policy file (see the module documentation for its shape).

        Raises:
            ConfigurationError: The file is not valid TOML, or a value is invalid.

        .. versionadded:: 0.1.0
        """
        text = Path(path).read_text(encoding="utf-8")
        return cls.from_mapping(_parse_toml(text, str(path)), source=str(path))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HostPolicies:
        """Load ``$COMMTEL_POLICIES_FILE``, then ``$COMMTEL_POLICIES`` (TOML text) over it.

        With neither set, commtel's defaults apply.

        .. versionadded:: 0.1.0
        """
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        path = env.get(ENV_POLICIES_FILE)
        if path:
            data = _parse_toml(Path(path).read_text(encoding="utf-8"), path)
        inline = env.get(ENV_POLICIES)
        if inline:
            data = _merge(data, _parse_toml(inline, f"${ENV_POLICIES}"))
        return cls.from_mapping(data, source=path or f"${ENV_POLICIES}")

    def _host_entry(self, host: str) -> tuple[str, HostPolicy] | None:
        found = self.hosts.get(host)
        if found is not None:
            return host, found
        for pattern, policy in self.hosts.items():
            if "*" in pattern and fnmatch.fnmatchcase(host, pattern):
                return pattern, policy
        return None

    def _build(
        self, name: str, own: tuple[str, HostPolicy] | None, platform: str | None, extra: HostPolicy | None
    ) -> _Scope:
        # Layers from general to specific; a component's instance is keyed by the layer that set it.
        platform = own[1].platform_name(platform or "") if own is not None else platform
        layers: list[tuple[str, HostPolicy | None]] = [
            ("", self.default),
            (f"platforms.{platform}", self.platforms.get(platform) if platform else None),
            (f"hosts.{own[0]}" if own else "", own[1] if own else None),
            ("", extra),
        ]
        policy = _DEFAULT
        origins = {"breaker": "", "rate_limit": ""}
        for origin, layer in layers:
            if layer is None:
                continue
            policy = layer.over(policy)
            for kind in origins:
                if getattr(layer, kind) is not _UNSET:
                    origins[kind] = origin
        label = policy.platform_name(platform or name)
        components = []
        for kind in ("breaker", "rate_limit"):
            origin = origins[kind]
            if not origin:
                components.append(_instance(kind, label, getattr(policy, kind)))  # type: ignore[arg-type]
                continue
            key = (kind, origin)
            if key not in self._instances:
                self._instances[key] = _instance(kind, label, getattr(policy, kind))  # type: ignore[arg-type]
            components.append(self._instances[key])
        return _Scope(policy, label, *components)

    def for_host(self, host: str) -> _Scope:
        """The live scope of calls to *host* (its breaker, limiter and guards).

        .. versionadded:: 0.1.0
        """
        scope = self._scopes.get(host)
        if scope is None:
            with self._lock:
                scope = self._scopes.get(host)
                if scope is None:
                    key = host.lower()
                    scope = self._scopes[host] = self._build(key, self._host_entry(key), None, None)
        return scope

    def for_platform(self, platform: str | None, policy: HostPolicy | None = None) -> _Scope:
        """The live scope of a platform; with *policy*, a new scope with that layered on top.

        .. versionadded:: 0.1.0
        """
        name = platform or ""
        if policy is not None:
            with self._lock:
                return self._build(name, None, name, policy)
        key = f"platform:{name}"
        scope = self._scopes.get(key)
        if scope is None:
            with self._lock:
                scope = self._scopes.get(key)
                if scope is None:
                    scope = self._scopes[key] = self._build(name, None, name, None)
        return scope


def _policy_from(value: Any, where: str) -> HostPolicy:
    if isinstance(value, HostPolicy):
        return value
    if not isinstance(value, Mapping):
        msg = f"{where} must be a table of policy fields, got {value!r}"
        raise ConfigurationError(msg)
    known = {f.name for f in fields(HostPolicy)}
    unknown = sorted(set(value) - known)
    if unknown:
        msg = f"{where}: unknown field(s) {unknown}; expected {sorted(known)}"
        raise ConfigurationError(msg)
    policy = HostPolicy.__new__(HostPolicy)
    for name in known:
        object.__setattr__(policy, name, value.get(name, _UNSET))
    _validate(policy, where)
    return policy


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{source}: not valid TOML: {exc}"
        raise ConfigurationError(msg) from None


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
        )
    return out


_lock = threading.Lock()
_configured: HostPolicies | None = None


def configured_policies() -> HostPolicies:
    """The process-wide policies: from the environment, loaded on first use."""
    global _configured  # noqa: PLW0603
    if _configured is None:
        with _lock:
            if _configured is None:
                _configured = HostPolicies.from_env()
    return _configured


def resolve_policy(policy: HostPolicy | Mapping[str, Any] | None, platform: str | None) -> _Scope:
    """The scope :func:`~commtel.instrument` guards with: *policy* layered over the configured one."""
    policies = configured_policies()
    return policies.for_platform(platform, None if policy is None else _policy_from(policy, "policy"))
